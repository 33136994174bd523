"""The read models' Lua scripts, and running them with EVALSHA in a pipeline on one Redis
or a Redis Cluster (redis-py's cluster pipeline routes each call by its keys' slot).

Every script's keys share one hash slot, so each runs atomically on one node. The guards:
- an upsert runs only if its slot's meta holds the projector's `epoch` (a node that lost
  its data, or a rebuild that started over, refuses it: -1);
- positions are written, and a rebuild begins, finishes or a check is recorded, only on
  the server the projector saw (its run id, read inside the script from `INFO server`):
  a restarted or failed-over node may hold less than was written before, so nothing is
  recorded on it until the projector compared its positions with what was committed;
- a read answers only from a slot that is ready and was checked on the server answering."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from redis.exceptions import NoScriptError

# the run id of the server running the script; one_of(list): is it in a space-separated list
RUNNING = """
local running = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)')
local function one_of(list) return string.find(' ' .. list .. ' ', ' ' .. running .. ' ', 1, true) ~= nil end
"""
# Every upsert: KEYS end with the slot's meta, ARGV with the epoch. -1: another epoch (nothing done).
GUARD = """
if redis.call('HGET', KEYS[#KEYS], 'epoch') ~= ARGV[#ARGV] then return -1 end
"""

# KEYS: fact, total, by-date, banked (+ GUARD's)   ARGV: generation, revision, xp, date, user, kind, resource
FACT = GUARD + """
local g, r, xp = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local held = redis.call('HMGET', KEYS[1], 'generation', 'revision', 'xp', 'date')
if held[1] then
  local hg, hr = tonumber(held[1]), tonumber(held[2])
  if hg > g or (hg == g and hr >= r) then return 0 end
  local minus = 0 - tonumber(held[3])  -- not -old: Lua's -0 reaches Redis as "-0", not an integer
  redis.call('INCRBY', KEYS[2], minus)
  if redis.call('HINCRBY', KEYS[3], held[4], minus) == 0 then redis.call('HDEL', KEYS[3], held[4]) end
end
redis.call('HSET', KEYS[1], 'generation', g, 'revision', r, 'xp', xp, 'date', ARGV[4],
           'user', ARGV[5], 'kind', ARGV[6], 'resource', ARGV[7])
redis.call('INCRBY', KEYS[2], xp)
if redis.call('HINCRBY', KEYS[3], ARGV[4], xp) == 0 then redis.call('HDEL', KEYS[3], ARGV[4]) end
if ARGV[6] == 'banked' then redis.call('HSET', KEYS[4], ARGV[7], xp) end
return 1
"""

# KEYS: active pointer, last applied event, open view, completed view, the learner's exercises (+ GUARD's)
# ARGV: generation, offset, state, attempt, view JSON (of the open or the completed attempt), exercise
ATTEMPT = GUARD + """
redis.call('SADD', KEYS[5], ARGV[6])
local g, o = tonumber(ARGV[1]), tonumber(ARGV[2])
local held = redis.call('HMGET', KEYS[2], 'generation', 'offset')
if held[1] then
  local hg, ho = tonumber(held[1]), tonumber(held[2])
  if hg > g or (hg == g and ho >= o) then return 0 end
end
redis.call('HSET', KEYS[2], 'generation', g, 'offset', o, 'state', ARGV[3], 'attempt', ARGV[4])
if ARGV[3] == 'open' then
  redis.call('SET', KEYS[1], ARGV[4])
  redis.call('SET', KEYS[3], ARGV[5])
else
  redis.call('DEL', KEYS[1], KEYS[3])
  if ARGV[3] == 'completed' then redis.call('SET', KEYS[4], ARGV[5]) end
end
return 1
"""

# KEYS: decision, the learner's exercises (+ GUARD's)   ARGV: generation, offset, evidence JSON, exercise
DECISION = GUARD + """
redis.call('SADD', KEYS[2], ARGV[4])
local g, o = tonumber(ARGV[1]), tonumber(ARGV[2])
local held = redis.call('HMGET', KEYS[1], 'generation', 'offset')
if held[1] then
  local hg, ho = tonumber(held[1]), tonumber(held[2])
  if hg > g or (hg == g and ho >= o) then return 0 end
end
redis.call('HSET', KEYS[1], 'generation', g, 'offset', o, 'evidence', ARGV[3])
return 1
"""

# KEYS: a meta. The run id of the server answering, and the meta.
SHARD = RUNNING + """
return {running, redis.call('HGETALL', KEYS[1])}
"""
# KEYS: a shard's meta, its positions   ARGV: epoch, servers, then (field, next offset) pairs.
# Positions only grow; -1: another epoch, or not the server the read models were checked on.
ADVANCE = RUNNING + """
local held = redis.call('HMGET', KEYS[1], 'epoch', 'server')
if held[1] ~= ARGV[1] or held[2] ~= running or not one_of(ARGV[2]) then return -1 end
for i = 3, #ARGV, 2 do
  local at = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '-1')
  if tonumber(ARGV[i + 1]) > at then redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
return 0
"""
# KEYS: a slot's meta   ARGV: epoch, servers. A rebuild begins there, on this server (0: not one of them).
BEGIN = RUNNING + """
if not one_of(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'state', 'rebuilding', 'server', running)
return 1
"""
# KEYS: a slot's meta   ARGV: epoch, servers. Ready, if still that epoch on the server it began on.
FINISH_SLOT = RUNNING + """
local held = redis.call('HMGET', KEYS[1], 'epoch', 'server')
if held[1] ~= ARGV[1] or held[2] ~= running or not one_of(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'state', 'ready')
return 1
"""
# KEYS: meta   ARGV: epoch. The read models are ready, if the epoch is still the current one.
FINISH = """
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'ready')
return 1
"""
# KEYS: a slot's meta   ARGV: epoch, the server it was checked on before, the server checked now.
CHECKED = RUNNING + """
local held = redis.call('HMGET', KEYS[1], 'epoch', 'server')
if held[1] ~= ARGV[1] or held[2] ~= ARGV[2] or running ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'server', running)
return 1
"""
# KEYS: lock   ARGV: token, ttl ms. Extend (or release with ttl 0) a lock only its holder may.
LOCK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('DEL', KEYS[1])
"""
# KEYS: a slot's meta, then the keys to read   ARGV: how to read each ('get', 'hgetall',
# 'smembers', or '.field' for HGET). {1, values...} when the slot is ready and was checked on
# this server; else {0, this server's run id, the slot's meta}.
READ = RUNNING + """
local held = redis.call('HMGET', KEYS[1], 'epoch', 'state', 'server')
if not held[1] or held[2] ~= 'ready' or held[3] ~= running then
  return {0, running, redis.call('HGETALL', KEYS[1])}
end
local out = {1}
for i = 2, #KEYS do
  local how = ARGV[i - 1]
  if how == 'get' then out[i] = redis.call('GET', KEYS[i])
  elseif how == 'hgetall' then out[i] = redis.call('HGETALL', KEYS[i])
  elseif how == 'smembers' then out[i] = redis.call('SMEMBERS', KEYS[i])
  else out[i] = redis.call('HGET', KEYS[i], string.sub(how, 2)) end
end
return out
"""

SCRIPTS = {"fact": FACT, "attempt": ATTEMPT, "decision": DECISION, "shard": SHARD, "advance": ADVANCE,
           "begin": BEGIN, "finish_slot": FINISH_SLOT, "finish": FINISH, "checked": CHECKED, "lock": LOCK,
           "read": READ}
CHUNK = 4096  # calls per pipeline

Call = tuple[str, Sequence[str], Sequence[str | int]]  # script name, keys, arguments


class Scripts:
    """The scripts by name, run with EVALSHA. A node without them (restarted, promoted, or
    flushed with SCRIPT FLUSH) gets every script loaded again, and the calls run once more:
    each script is safe to run twice."""

    def __init__(self, client) -> None:
        self.client = client
        self.shas = {name: hashlib.sha1(body.encode()).hexdigest() for name, body in SCRIPTS.items()}

    async def load(self) -> None:
        """SCRIPT LOAD on the server (on a cluster: on every primary)."""
        for body in SCRIPTS.values():
            await self.client.script_load(body)

    async def call(self, name: str, keys: Sequence[str], args: Sequence[str | int] = ()):
        [result] = await self.run([(name, keys, args)])
        return result

    async def run(self, calls: list[Call]) -> list:
        """Every call's result, in order (one pipeline per CHUNK calls)."""
        results: list = []
        for start in range(0, len(calls), CHUNK):
            results.extend(await self._run(calls[start:start + CHUNK]))
        return results

    async def _run(self, calls: list[Call]) -> list:
        for attempt in (1, 2):
            pipe = self.client.pipeline(transaction=False)
            for name, keys, args in calls:
                # (execute_command: redis-py's cluster pipeline refuses its evalsha method, not the command)
                pipe.execute_command("EVALSHA", self.shas[name], len(keys), *keys, *args)
            results = await pipe.execute(raise_on_error=False)
            if attempt == 1 and any(isinstance(r, NoScriptError) for r in results):
                await self.load()
                continue
            for result in results:
                if isinstance(result, Exception):
                    raise result
            return results
        raise AssertionError("unreachable")
