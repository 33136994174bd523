"""The Redis edge of the read models: each planned upsert (`projection.py`) runs as one
Lua script, so it is applied atomically and only when it is newer than what is held.
Clients are opened by the caller's `connect`, never at import time."""

from __future__ import annotations

from collections.abc import Iterable

import redis.asyncio as aioredis

from xpbank.read.projection import Keys, Upsert, xp_view

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

# KEYS: active pointer, last applied event   ARGV: generation, offset, state, attempt
ATTEMPT_SCRIPT = """
local g, o = tonumber(ARGV[1]), tonumber(ARGV[2])
local held = redis.call('HMGET', KEYS[2], 'generation', 'offset')
if held[1] then
  local hg, ho = tonumber(held[1]), tonumber(held[2])
  if hg > g or (hg == g and ho >= o) then return 0 end
end
redis.call('HSET', KEYS[2], 'generation', g, 'offset', o, 'state', ARGV[3], 'attempt', ARGV[4])
if ARGV[3] == 'open' then redis.call('SET', KEYS[1], ARGV[4]) else redis.call('DEL', KEYS[1]) end
return 1
"""


class ReadModels:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.scripts = {"fact": client.register_script(FACT_SCRIPT), "attempt": client.register_script(ATTEMPT_SCRIPT)}

    @classmethod
    def connect(cls, url: str, prefix: str) -> ReadModels:
        return cls(aioredis.from_url(url, socket_timeout=10, socket_connect_timeout=5), prefix)

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
