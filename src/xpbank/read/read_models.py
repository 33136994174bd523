"""The Redis edge of the read models: each planned upsert (`projection.py`) runs as one
Lua script (`scripts.py`), so it is applied atomically and only when it is newer than
what is held. Clients are opened by the caller's `connect`, never at import time. One
Redis and a Redis Cluster (`redis+cluster://`) take the same path: one Redis is a
cluster of one shard whose every slot shares `meta`.

Every upsert first checks that its slot's `epoch` is the one the projector read, so it
never lands in a node that lost its data or a rebuild that started over. After each
batch the projector records, on every shard, how far it got (`positions`), only on the
server it checked: so whatever a node keeps holds every record before its positions.
Every read checks, in the same script as the data it reads, that its slot is ready and
was checked on the server answering: a lost, rebuilding, restarted or failed-over node
answers `ReadModelsUnavailable`, never a wrong total."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster

from xpbank.config import Settings, redis_cluster_nodes
from xpbank.read.projection import Keys, Upsert, learner_view, no_attempt_view, xp_view
from xpbank.read.scripts import Call, Scripts


class ReadModelsUnavailable(RuntimeError):
    """The read models cannot answer truthfully now (lost, or being rebuilt)."""


class EpochChanged(RuntimeError):
    """An upsert met another epoch than the projector's (a node lost its data, or a
    rebuild started over), or positions met another server than the one checked: nothing
    of that call was recorded."""


@dataclass(frozen=True)
class Shard:
    """One shard's meta (of its first slot; one Redis: `meta`) as it was read, and the
    run id of the server answering for it."""

    meta: str
    positions: str
    epoch: str | None = None
    state: str | None = None
    server: str | None = None  # the run id the read models were checked on
    running: str | None = None  # the run id of the server answering now


@dataclass(frozen=True)
class Status:
    """The `meta` hash (None fields when it is absent: lost, or never built), and each shard's."""

    epoch: str | None
    state: str | None
    since: float | None = None
    reason: str = ""
    shards: tuple[Shard, ...] = ()

    @property
    def complete(self) -> bool:
        """Built (not lost, not being rebuilt)."""
        return self.state == "ready"

    @property
    def lost(self) -> list[Shard]:
        """Shards without this epoch: a node that came back empty, or with other read models."""
        return [shard for shard in self.shards if shard.epoch != self.epoch]

    @property
    def unchecked(self) -> list[Shard]:
        """Shards answered by another server than the one the read models were checked on:
        a restarted or failed-over node may have come back with less."""
        return [shard for shard in self.shards if shard.server != shard.running]

    @property
    def ready(self) -> bool:
        return self.epoch is not None and self.complete and not self.lost and not self.unchecked

    @property
    def running(self) -> frozenset[str]:
        """The run ids of the servers answering for the shards now."""
        return frozenset(shard.running for shard in self.shards if shard.running)

    @property
    def name(self) -> str:
        """`ready`, `lost` (or never built; or a shard lost them), `rebuilding`, or
        `checking` (what a restarted or failed-over node kept)."""
        if self.epoch is None:
            return "lost"
        if not self.complete:
            return "rebuilding"
        if self.lost:
            return "lost"
        return "ready" if self.ready else "checking"

    def problem(self) -> str:
        name = self.name
        if name == "lost":
            where = f" ({len(self.lost)} of {len(self.shards)} shards)" if self.epoch else ""
            return (f"the read models are not in Redis{where} (lost or never built): the projector rebuilds them "
                    "from the topics; try again shortly")
        if name == "rebuilding":
            age = f" for {time.time() - self.since:.0f} s" if self.since else ""
            return f"the read models are being rebuilt from the topics{age} ({self.reason or 'rebuild'}); try again shortly"
        return ("Redis restarted or failed over since the read models were checked: the projector checks what it "
                "kept (and rebuilds what it lost); try again shortly")


@dataclass(frozen=True)
class Guard:
    """What a batch is applied under: the epoch, and the shards with the servers checked."""

    epoch: str
    shards: tuple[Shard, ...]

    @property
    def servers(self) -> str:
        return " ".join(sorted({shard.running or "" for shard in self.shards}))


class ReadModels:
    def __init__(self, client: aioredis.Redis | RedisCluster, prefix: str, cluster: bool = False) -> None:
        self.client, self.cluster = client, cluster
        self.keys = Keys(prefix, cluster)
        self.scripts = Scripts(client)

    @classmethod
    def connect(cls, settings: Settings) -> ReadModels:
        return cls(redis_client(settings), settings.redis_prefix, settings.redis_cluster)

    # ---- projecting ---------------------------------------------------------------------
    async def apply(self, upserts: Iterable[Upsert], epoch: str) -> int:
        """Apply in order (pipelined) under `epoch`; returns how many changed something.
        Raises EpochChanged when a slot's epoch is another one."""
        calls = [(u.script, [*u.keys, self.keys.slot_meta(u.keys[0])], [*u.args, epoch]) for u in upserts]
        if not calls:
            return 0
        results = [int(result) for result in await self.scripts.run(calls)]
        if -1 in results:
            raise EpochChanged(f"{results.count(-1)} of {len(results)} upserts met another epoch than {epoch}")
        return sum(results)

    async def advance(self, ends: dict[str, int], guard: Guard) -> None:
        """Every shard's positions to `ends` (partition -> next offset), on the servers of
        `guard` only, after the records before them were applied."""
        if not ends:
            return
        pairs = [item for field, after in sorted(ends.items()) for item in (field, after)]
        calls = [("advance", [s.meta, s.positions], [guard.epoch, guard.servers, *pairs]) for s in guard.shards]
        if -1 in [int(r) for r in await self.scripts.run(calls)]:
            raise EpochChanged(f"a shard's epoch is no longer {guard.epoch}, or its server is not the one checked")

    async def shards(self) -> list[Shard]:
        """The shards, each by the meta and positions of its first slot (one Redis: one)."""
        if not self.cluster:
            return [Shard(*self.keys.shard(0))]
        first: dict[tuple, int] = {}
        for (start, _end), node in (await self.client.cluster_slots()).items():
            first[node["primary"]] = min(start, first.get(node["primary"], start))
        return [Shard(*self.keys.shard(slot)) for slot in sorted(first.values())]

    async def status(self) -> Status:
        shards = await self.shards()
        calls: list[Call] = [("shard", [self.keys.meta], [])] if self.cluster else []
        answers = await self.scripts.run(calls + [("shard", [s.meta], []) for s in shards])
        held = _fields(answers[0][1])
        shards = [_shard(s, running, _fields(meta)) for s, (running, meta) in zip(shards, answers[len(calls):])]
        since = held.get("since")
        return Status(held.get("epoch"), held.get("state"), float(since) if since else None, held.get("reason", ""),
                      tuple(shards))

    async def positions(self, shards: Iterable[Shard] | None = None) -> dict[str, int]:
        """Every partition's next offset to project, as every shard holds it (the least)."""
        held = [await self.shard_positions(shard) for shard in (shards or await self.shards())]
        fields = set.intersection(*(set(h) for h in held)) if held else set()
        return {field: min(h[field] for h in held) for field in fields}

    async def shard_positions(self, shard: Shard) -> dict[str, int]:
        return {_text(k): int(v) for k, v in (await self.client.hgetall(shard.positions)).items()}

    # ---- rebuilding -----------------------------------------------------------------------
    async def lock(self, token: str, ttl_ms: int) -> bool:
        """Take the rebuild lock (True) unless another holds it."""
        return bool(await self.client.set(self.keys.rebuild_lock, token, nx=True, px=ttl_ms))

    async def keep_lock(self, token: str, ttl_ms: int) -> bool:
        """Extend the lock; False when it is no longer ours (expired and taken)."""
        return bool(await self.scripts.call("lock", [self.keys.rebuild_lock], [token, ttl_ms]))

    async def unlock(self, token: str) -> None:
        await self.scripts.call("lock", [self.keys.rebuild_lock], [token, 0])

    async def lock_holder(self) -> str | None:
        held = await self.client.get(self.keys.rebuild_lock)
        return None if held is None else _text(held)

    async def begin_rebuild(self, epoch: str, reason: str, guard: Guard | None = None) -> Guard:
        """A new epoch, state `rebuilding`, in `meta` and every slot, on the servers
        answering now (or `guard`'s): readers answer 503, older upserts are refused."""
        guard = Guard(epoch, (guard.shards if guard else (await self.status()).shards))
        await self.client.hset(self.keys.meta, mapping={"epoch": epoch, "state": "rebuilding",
                                                        "since": f"{time.time():.3f}", "reason": reason[:300]})
        begun = await self.scripts.run([("begin", [meta], [epoch, guard.servers]) for meta in self.keys.slot_metas()])
        if 0 in begun:
            raise EpochChanged("a Redis node changed while the rebuild began")
        return guard

    async def finish_rebuild(self, epoch: str, guard: Guard | Iterable[str] | str | None) -> bool:
        """Ready, if every slot is still `epoch` on the server the rebuild began on."""
        servers = guard.servers if isinstance(guard, Guard) else guard if isinstance(guard, str) else " ".join(guard or ())
        finished = await self.scripts.run([("finish_slot", [meta], [epoch, servers]) for meta in self.keys.slot_metas()])
        return 0 not in finished and bool(await self.scripts.call("finish", [self.keys.meta], [epoch]))

    async def mark_checked(self, epoch: str, shard: Shard) -> int:
        """The shard's slots checked on the server answering now (it kept every record
        projected before its positions); returns the slots marked."""
        calls = [("checked", [meta], [epoch, shard.server or "", shard.running or ""]) for meta in self.keys.slot_metas()]
        return sum(int(r) for r in await self.scripts.run(calls))

    async def clear(self) -> int:
        """Delete every key under the prefix but the metas and the rebuild lock (SCAN + DEL,
        on every node of a cluster)."""
        deleted, batch = 0, []
        async for key in self.client.scan_iter(match=self.keys.pattern, count=1000):
            if self.keys.kept_by_clear(key):
                continue
            batch.append(key)
            if len(batch) >= 1000:
                deleted += await self.client.delete(*batch)
                batch.clear()
        if batch:
            deleted += await self.client.delete(*batch)
        return deleted

    # ---- reading (each in one script with its slot's state) ---------------------------------
    async def _read(self, reads: list[tuple[str, str]]) -> list:
        """The values of (key, how) reads of one learner's keys, read in one script with their
        slot's meta; ReadModelsUnavailable unless it is ready on the server answering."""
        keys, how = [key for key, _ in reads], [h for _, h in reads]
        answer = await self.scripts.call("read", [self.keys.slot_meta(keys[0]), *keys], how)
        if answer[0] == 1:
            return [_fields(v) if h == "hgetall" else set(v) if h == "smembers" else v
                    for v, h in zip(answer[1:], how)]
        held = _fields(answer[2])
        slot = Shard("", "", held.get("epoch"), held.get("state"), held.get("server"), _text(answer[1]))
        since = held.get("since")
        raise ReadModelsUnavailable(Status(slot.epoch, slot.state, float(since) if since else None,
                                           held.get("reason", ""), (slot,)).problem())

    async def user_xp(self, user: str) -> dict:
        total, by_date = await self._read([(self.keys.total(user), "get"), (self.keys.by_date(user), "hgetall")])
        return xp_view(user, total, by_date)

    async def attempt(self, user: str, exercise: str) -> tuple[int, dict]:
        """The open attempt, else the last completed one, else 404 (as the worker's state says)."""
        open_, done = await self._read([(self.keys.open_attempt(user, exercise), "get"),
                                        (self.keys.done_attempt(user, exercise), "get")])
        if open_ or done:
            return 200, orjson.loads(open_ or done)
        return 404, no_attempt_view(user, exercise)

    async def evidence(self, user: str, exercise: str) -> dict | None:
        """The latest banking evidence of (user, exercise), or None."""
        [raw] = await self._read([(self.keys.decision(user, exercise), ".evidence")])
        return None if raw is None else orjson.loads(raw)

    async def learner(self, user: str) -> dict:
        """Everything the read models hold about one learner (`projection.learner_view`):
        two round trips, the second for the exercises of its `exercises:` index."""
        k = self.keys
        total, by_date, banked, indexed = await self._read([
            (k.total(user), "get"), (k.by_date(user), "hgetall"), (k.banked(user), "hgetall"),
            (k.exercises(user), "smembers")])
        exercises = sorted(_text(e) for e in indexed)
        found: list = []
        if exercises:
            found = await self._read([read for exercise in exercises for read in (
                (k.open_attempt(user, exercise), "get"), (k.done_attempt(user, exercise), "get"),
                (k.decision(user, exercise), ".evidence"))])
        views_of = {e: tuple(found[3 * n:3 * n + 3]) for n, e in enumerate(exercises)}
        return learner_view(user, total, by_date, banked, views_of)

    async def active_attempt(self, user: str, exercise: str) -> int | None:
        [raw] = await self._read([(self.keys.active_attempt(user, exercise), "get")])
        return None if raw is None else int(raw)

    async def close(self) -> None:
        await self.client.aclose()


def _shard(shard: Shard, running: bytes | str, held: dict[str, str]) -> Shard:
    return Shard(shard.meta, shard.positions, held.get("epoch"), held.get("state"), held.get("server"), _text(running))


def _fields(flat: list | dict) -> dict[str, str]:
    """A hash as HGETALL answers it inside a script (a flat list), as text."""
    pairs = flat.items() if isinstance(flat, dict) else zip(flat[::2], flat[1::2])
    return {_text(k): _text(v) for k, v in pairs}


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def redis_client(settings: Settings, **options) -> aioredis.Redis | RedisCluster:
    """The one way to connect to Redis: its URL (credentials inside, never logged) and,
    for `rediss://`, the CA that signed the server's certificate. A `redis+cluster://`
    URL (`rediss+cluster://` with TLS) names one or more nodes of a Redis Cluster."""
    if settings.redis_ca_file:
        options["ssl_ca_certs"] = settings.redis_ca_file
    options |= {"socket_timeout": 10, "socket_connect_timeout": 5}
    if not settings.redis_cluster:
        return aioredis.from_url(settings.redis_url, **options)
    url, nodes = redis_cluster_nodes(settings.redis_url)
    # require_full_coverage off: the shards that answer keep serving while one fails over
    return RedisCluster.from_url(url, startup_nodes=[ClusterNode(host, port) for host, port in nodes],
                                 require_full_coverage=False, **options)
