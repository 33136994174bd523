"""The Redis edge of the read models: each planned upsert (`projection.py`) runs as one
Lua script, so it is applied atomically and only when it is newer than what is held.
Clients are opened by the caller's `connect`, never at import time."""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

import orjson

from xpbank.config import Settings
from xpbank.read.projection import Keys, Upsert, learner_view, no_attempt_view, xp_view

# KEYS: fact, total, by-date, banked   ARGV: generation, revision, xp, date, user, kind, resource
FACT_SCRIPT = """
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

# KEYS: active pointer, last applied event, open view, completed view, the learner's exercises
# ARGV: generation, offset, state, attempt, view JSON (of the open or the completed attempt), exercise
ATTEMPT_SCRIPT = """
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

# KEYS: decision, the learner's exercises   ARGV: generation, offset, evidence JSON, exercise
DECISION_SCRIPT = """
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


class ReadModels:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.scripts = {name: client.register_script(script) for name, script in
                        (("fact", FACT_SCRIPT), ("attempt", ATTEMPT_SCRIPT), ("decision", DECISION_SCRIPT))}

    @classmethod
    def connect(cls, settings: Settings) -> ReadModels:
        return cls(redis_client(settings), settings.redis_prefix)

    async def apply(self, upserts: Iterable[Upsert]) -> int:
        """Apply in order (one round trip); returns how many changed something."""
        pipe = self.client.pipeline(transaction=False)
        count = 0
        for upsert in upserts:
            await self.scripts[upsert.script](keys=list(upsert.keys), args=list(upsert.args), client=pipe)
            count += 1
        if not count:
            return 0
        return sum(int(result) for result in await pipe.execute())

    async def user_xp(self, user: str) -> dict:
        pipe = self.client.pipeline(transaction=True)
        pipe.get(self.keys.total(user))
        pipe.hgetall(self.keys.by_date(user))
        total, by_date = await pipe.execute()
        return xp_view(user, total, by_date)

    async def attempt(self, user: str, exercise: str) -> tuple[int, dict]:
        """The open attempt, else the last completed one, else 404 (as the worker's state says)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.get(self.keys.open_attempt(user, exercise))
        pipe.get(self.keys.done_attempt(user, exercise))
        open_, done = await pipe.execute()
        if open_ or done:
            return 200, orjson.loads(open_ or done)
        return 404, no_attempt_view(user, exercise)

    async def evidence(self, user: str, exercise: str) -> dict | None:
        """The latest banking evidence of (user, exercise), or None."""
        raw = await self.client.hget(self.keys.decision(user, exercise), "evidence")
        return None if raw is None else orjson.loads(raw)

    async def learner(self, user: str) -> dict:
        """Everything the read models hold about one learner (`projection.learner_view`):
        two round trips, the second for the exercises of its `exercises:` index."""
        k = self.keys
        pipe = self.client.pipeline(transaction=True)
        pipe.get(k.total(user))
        pipe.hgetall(k.by_date(user))
        pipe.hgetall(k.banked(user))
        pipe.smembers(k.exercises(user))
        total, by_date, banked, indexed = await pipe.execute()
        exercises = sorted(e.decode() if isinstance(e, bytes) else e for e in indexed)
        found: list = []
        if exercises:
            pipe = self.client.pipeline(transaction=True)
            for exercise in exercises:
                pipe.get(k.open_attempt(user, exercise))
                pipe.get(k.done_attempt(user, exercise))
                pipe.hget(k.decision(user, exercise), "evidence")
            found = await pipe.execute()
        views = {e: tuple(found[3 * n:3 * n + 3]) for n, e in enumerate(exercises)}
        return learner_view(user, total, by_date, banked, views)

    async def active_attempt(self, user: str, exercise: str) -> int | None:
        raw = await self.client.get(self.keys.active_attempt(user, exercise))
        return None if raw is None else int(raw)

    async def clear(self) -> int:
        """Delete every key under the prefix (SCAN + DEL)."""
        deleted, batch = 0, []
        async for key in self.client.scan_iter(match=self.keys.pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += await self.client.delete(*batch)
                batch.clear()
        if batch:
            deleted += await self.client.delete(*batch)
        return deleted

    async def close(self) -> None:
        await self.client.aclose()


def redis_client(settings: Settings, **options) -> aioredis.Redis:
    """The one way to connect to Redis: its URL (credentials inside, never logged) and,
    for `rediss://`, the CA that signed the server's certificate."""
    if settings.redis_ca_file:
        options["ssl_ca_certs"] = settings.redis_ca_file
    return aioredis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=5, **options)
