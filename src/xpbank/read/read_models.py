"""The Redis edge of the read models: each planned upsert (`projection.py`) runs as one
Lua script, so it is applied atomically and only when it is newer than what is held.
Clients are opened by the caller's `connect`, never at import time.

Every script first checks that the read models' `epoch` (in the `meta` hash) is the one
the projector read, and last records the record's position: so an upsert never lands in
a Redis that lost its data (a restart without persistence, a FLUSHALL) or that a rebuild
has started over, and whatever Redis keeps holds its own positions with its data. Every
read checks that the read models are `ready` in the same transaction as the data it
reads: a lost or rebuilding Redis answers `ReadModelsUnavailable`, never a wrong total."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from xpbank.config import Settings
from xpbank.read.projection import Keys, Upsert, learner_view, no_attempt_view, xp_view

# Every script: KEYS end with meta, positions; ARGV end with the epoch, the position field
# (empty: none) and the record's next offset. -1: the epoch is not that one (nothing done).
GUARD = """
local nk, na = #KEYS, #ARGV
if redis.call('HGET', KEYS[nk - 1], 'epoch') ~= ARGV[na - 2] then return -1 end
local function upsert()
"""
RECORD_POSITION = """
end
local changed = upsert()
if ARGV[na - 1] ~= '' then
  local held = tonumber(redis.call('HGET', KEYS[nk], ARGV[na - 1]) or '-1')
  if tonumber(ARGV[na]) > held then redis.call('HSET', KEYS[nk], ARGV[na - 1], ARGV[na]) end
end
return changed
"""

# KEYS: fact, total, by-date, banked (+ GUARD's)   ARGV: generation, revision, xp, date, user, kind, resource
FACT_SCRIPT = GUARD + """
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
""" + RECORD_POSITION

# KEYS: active pointer, last applied event, open view, completed view, the learner's exercises (+ GUARD's)
# ARGV: generation, offset, state, attempt, view JSON (of the open or the completed attempt), exercise
ATTEMPT_SCRIPT = GUARD + """
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
""" + RECORD_POSITION

# KEYS: decision, the learner's exercises (+ GUARD's)   ARGV: generation, offset, evidence JSON, exercise
DECISION_SCRIPT = GUARD + """
redis.call('SADD', KEYS[2], ARGV[4])
local g, o = tonumber(ARGV[1]), tonumber(ARGV[2])
local held = redis.call('HMGET', KEYS[1], 'generation', 'offset')
if held[1] then
  local hg, ho = tonumber(held[1]), tonumber(held[2])
  if hg > g or (hg == g and ho >= o) then return 0 end
end
redis.call('HSET', KEYS[1], 'generation', g, 'offset', o, 'evidence', ARGV[3])
return 1
""" + RECORD_POSITION


# KEYS: meta   ARGV: epoch, server. The read models are ready and checked against this Redis
# server (its run id), if the epoch is still the current one.
FINISH_SCRIPT = """
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'ready', 'server', ARGV[2])
return 1
"""
# KEYS: meta, positions   ARGV: epoch, then (field, next offset) pairs. Positions only grow.
ADVANCE_SCRIPT = """
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return -1 end
for i = 2, #ARGV, 2 do
  local held = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '-1')
  if tonumber(ARGV[i + 1]) > held then redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
return 0
"""
# KEYS: lock   ARGV: token, ttl ms. Extend (or release with ttl 0) a lock only its holder may.
LOCK_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('DEL', KEYS[1])
"""


class ReadModelsUnavailable(RuntimeError):
    """The read models cannot answer truthfully now (lost, or being rebuilt)."""


class EpochChanged(RuntimeError):
    """An upsert met another epoch than the projector's: Redis lost its data or a rebuild
    started over; nothing of that upsert was applied."""


@dataclass(frozen=True)
class Status:
    """The `meta` hash: None fields when it is absent (lost, or never built)."""

    epoch: str | None
    state: str | None
    since: float | None = None
    reason: str = ""
    server: str | None = None  # the run id of the Redis server the read models were checked on
    running: str | None = None  # the run id of the Redis server answering now

    @property
    def complete(self) -> bool:
        """Built (not lost, not being rebuilt)."""
        return self.state == "ready"

    @property
    def ready(self) -> bool:
        """Complete, and checked on the server answering now: a restarted or failed-over
        Redis may have come back with less, until a projector checked its positions."""
        return self.complete and self.server == self.running

    @property
    def name(self) -> str:
        """`ready`, `lost` (or never built), `rebuilding`, or `checking` (what a restarted
        or failed-over Redis kept)."""
        if self.epoch is None:
            return "lost"
        if not self.complete:
            return "rebuilding"
        return "ready" if self.ready else "checking"

    def problem(self) -> str:
        if self.epoch is None:
            return ("the read models are not in Redis (lost or never built): the projector rebuilds them from the "
                    "topics; try again shortly")
        if self.complete:
            return ("Redis restarted or failed over since the read models were checked: the projector checks what it "
                    "kept (and rebuilds what it lost); try again shortly")
        age = f" for {time.time() - self.since:.0f} s" if self.since else ""
        return f"the read models are being rebuilt from the topics{age} ({self.reason or 'rebuild'}); try again shortly"


class ReadModels:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.scripts = {name: client.register_script(script) for name, script in
                        (("fact", FACT_SCRIPT), ("attempt", ATTEMPT_SCRIPT), ("decision", DECISION_SCRIPT),
                         ("advance", ADVANCE_SCRIPT), ("finish", FINISH_SCRIPT), ("lock", LOCK_SCRIPT))}

    @classmethod
    def connect(cls, settings: Settings) -> ReadModels:
        return cls(redis_client(settings), settings.redis_prefix)

    # ---- projecting ---------------------------------------------------------------------
    async def apply(self, upserts: Iterable[Upsert], epoch: str) -> int:
        """Apply in order (one round trip) under `epoch`; returns how many changed
        something. Raises EpochChanged when the read models' epoch is another one."""
        pipe = self.client.pipeline(transaction=False)
        count = 0
        guard = (self.keys.meta, self.keys.positions)
        for upsert in upserts:
            field, after = upsert.source or ("", 0)
            await self.scripts[upsert.script](keys=[*upsert.keys, *guard], args=[*upsert.args, epoch, field, after],
                                              client=pipe)
            count += 1
        if not count:
            return 0
        results = [int(result) for result in await pipe.execute()]
        if -1 in results:
            raise EpochChanged(f"{results.count(-1)} of {len(results)} upserts met another epoch than {epoch}")
        return sum(results)

    async def advance(self, ends: dict[str, int], epoch: str) -> None:
        """Positions past records that had nothing to project (and partitions a rebuild
        read to their end), under `epoch`."""
        if not ends:
            return
        args = [epoch, *(item for field, after in sorted(ends.items()) for item in (field, after))]
        if int(await self.scripts["advance"](keys=[self.keys.meta, self.keys.positions], args=args)) == -1:
            raise EpochChanged(f"the read models' epoch is no longer {epoch}")

    async def status(self) -> Status:
        pipe = self.client.pipeline(transaction=True)
        pipe.info("server")
        pipe.hgetall(self.keys.meta)
        server, held = await pipe.execute()
        return _status(held, server)

    async def positions(self) -> dict[str, int]:
        """Every partition's next offset to project, as Redis holds it."""
        return {_text(k): int(v) for k, v in (await self.client.hgetall(self.keys.positions)).items()}

    # ---- rebuilding -----------------------------------------------------------------------
    async def lock(self, token: str, ttl_ms: int) -> bool:
        """Take the rebuild lock (True) unless another holds it."""
        return bool(await self.client.set(self.keys.rebuild_lock, token, nx=True, px=ttl_ms))

    async def keep_lock(self, token: str, ttl_ms: int) -> bool:
        """Extend the lock; False when it is no longer ours (expired and taken)."""
        return bool(await self.scripts["lock"](keys=[self.keys.rebuild_lock], args=[token, ttl_ms]))

    async def unlock(self, token: str) -> None:
        await self.scripts["lock"](keys=[self.keys.rebuild_lock], args=[token, 0])

    async def lock_holder(self) -> str | None:
        held = await self.client.get(self.keys.rebuild_lock)
        return None if held is None else _text(held)

    async def begin_rebuild(self, epoch: str, reason: str) -> None:
        """A new epoch, state `rebuilding`: readers answer 503, older upserts are refused."""
        await self.client.hset(self.keys.meta, mapping={"epoch": epoch, "state": "rebuilding",
                                                        "since": f"{time.time():.3f}", "reason": reason[:300]})

    async def finish_rebuild(self, epoch: str, server: str | None) -> bool:
        """Ready, and checked on `server` (the run id the rebuild started on)."""
        return bool(await self.scripts["finish"](keys=[self.keys.meta], args=[epoch, server or ""]))

    async def clear(self) -> int:
        """Delete every key under the prefix but `meta` and the rebuild lock (SCAN + DEL)."""
        keep = {self.keys.meta.encode(), self.keys.rebuild_lock.encode()}
        deleted, batch = 0, []
        async for key in self.client.scan_iter(match=self.keys.pattern, count=1000):
            if key in keep:
                continue
            batch.append(key)
            if len(batch) >= 1000:
                deleted += await self.client.delete(*batch)
                batch.clear()
        if batch:
            deleted += await self.client.delete(*batch)
        return deleted

    # ---- reading (each in one transaction with the state) ---------------------------------
    async def _read(self, fill) -> list:
        """Run `fill(pipe)`'s reads in one transaction behind the read models' state;
        ReadModelsUnavailable unless they are ready."""
        pipe = self.client.pipeline(transaction=True)
        pipe.info("server")
        pipe.hgetall(self.keys.meta)
        fill(pipe)
        server, held, *found = await pipe.execute()
        status = _status(held, server)
        if not status.ready:
            raise ReadModelsUnavailable(status.problem())
        return found

    async def user_xp(self, user: str) -> dict:
        total, by_date = await self._read(lambda p: (p.get(self.keys.total(user)), p.hgetall(self.keys.by_date(user))))
        return xp_view(user, total, by_date)

    async def attempt(self, user: str, exercise: str) -> tuple[int, dict]:
        """The open attempt, else the last completed one, else 404 (as the worker's state says)."""
        open_, done = await self._read(lambda p: (p.get(self.keys.open_attempt(user, exercise)),
                                                  p.get(self.keys.done_attempt(user, exercise))))
        if open_ or done:
            return 200, orjson.loads(open_ or done)
        return 404, no_attempt_view(user, exercise)

    async def evidence(self, user: str, exercise: str) -> dict | None:
        """The latest banking evidence of (user, exercise), or None."""
        [raw] = await self._read(lambda p: p.hget(self.keys.decision(user, exercise), "evidence"))
        return None if raw is None else orjson.loads(raw)

    async def learner(self, user: str) -> dict:
        """Everything the read models hold about one learner (`projection.learner_view`):
        two round trips, the second for the exercises of its `exercises:` index."""
        k = self.keys
        total, by_date, banked, indexed = await self._read(lambda p: (
            p.get(k.total(user)), p.hgetall(k.by_date(user)), p.hgetall(k.banked(user)), p.smembers(k.exercises(user))))
        exercises = sorted(_text(e) for e in indexed)
        found: list = []
        if exercises:
            def views(pipe) -> None:
                for exercise in exercises:
                    pipe.get(k.open_attempt(user, exercise))
                    pipe.get(k.done_attempt(user, exercise))
                    pipe.hget(k.decision(user, exercise), "evidence")
            found = await self._read(views)
        views_of = {e: tuple(found[3 * n:3 * n + 3]) for n, e in enumerate(exercises)}
        return learner_view(user, total, by_date, banked, views_of)

    async def active_attempt(self, user: str, exercise: str) -> int | None:
        [raw] = await self._read(lambda p: p.get(self.keys.active_attempt(user, exercise)))
        return None if raw is None else int(raw)

    async def close(self) -> None:
        await self.client.aclose()


def _status(held: dict, server: dict) -> Status:
    values = {_text(k): _text(v) for k, v in held.items()}
    since = values.get("since")
    return Status(values.get("epoch"), values.get("state"), float(since) if since else None, values.get("reason", ""),
                  values.get("server"), server.get("run_id"))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def redis_client(settings: Settings, **options) -> aioredis.Redis:
    """The one way to connect to Redis: its URL (credentials inside, never logged) and,
    for `rediss://`, the CA that signed the server's certificate."""
    if settings.redis_ca_file:
        options["ssl_ca_certs"] = settings.redis_ca_file
    return aioredis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=5, **options)
