"""The projector: follows `xp.facts.v1`, `xp.attempts.v1` and `xp.decisions.v1` into the
Redis read models.

At least once, and positioned by Redis itself: after each batch the projector records on
every shard how far it applied (`positions`), on the server it checked only, and before
each batch it compares those positions with what it fetched. Redis behind (a replica
that missed writes, an older snapshot) sends the partition back to Redis's position; a
restarted or failed-over node is checked (its positions against the group's committed
offsets) before anything is recorded on it; Redis (or a shard of a cluster) without its
`meta` (restarted without persistence, FLUSHALL, never built) is rebuilt from the topics
by one projector at a time (the rebuild lock), while readers answer 503. Offsets are
committed to the group after each batch, once Redis recorded it.

It runs as a task of `xpbank worker` (unless `XPBANK_PROJECTOR=0`) or on its own as
`xpbank projector`, which serves /healthz and /metrics on XPBANK_PROJECTOR_PORT. A
failure never touches a decision: it reports, waits and starts again."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
import time
import uuid
from collections import Counter

from aiokafka import AIOKafkaConsumer

from xpbank.config import Settings
from xpbank.kafka.admin import Admin
from xpbank.kafka.background import keep_running
from xpbank.kafka.connection import aiokafka_options
from xpbank.read.output_topics import (
    BATCH, assigned_positions, plans, projected_topics, projector_group, read_to_end, seek_or_rewind,
)
from xpbank.contract.topics import base_name
from xpbank.read.projection import position_field
from xpbank.read.read_models import EpochChanged, Guard, ReadModels, Status

log = logging.getLogger("xpbank.projector")
LOCK_MS = 30_000  # the rebuild lock outlives a stalled rebuilder by this much


@dataclasses.dataclass
class Health:
    """What the projector knows of itself, for /healthz, /metrics and the page."""

    redis_up: bool | None = None
    rebuilding: bool = False
    ready: bool = False  # the read models are ready and this projector follows them
    lag: dict[tuple[str, int], int] = dataclasses.field(default_factory=dict)
    problem: str = "starting"


class Projector:
    def __init__(self, settings: Settings, metrics: Counter | None = None) -> None:
        self.settings = settings
        self.metrics = Counter() if metrics is None else metrics
        self.health = Health()

    async def run(self) -> None:
        """Follow the output topics until cancelled, starting again after failures."""

        async def follow() -> None:
            try:
                await self._follow()
            except Exception as exc:
                self.metrics["projector_errors"] += 1
                self.health.ready, self.health.problem = False, f"{type(exc).__name__}: {exc}"[:300]
                if _is_redis_error(exc):
                    self.health.redis_up = False
                raise

        await keep_running("projector", follow, self.metrics, first_wait=2.0, longest_wait=15.0)

    async def _follow(self) -> None:
        models = ReadModels.connect(self.settings)
        consumer = AIOKafkaConsumer(
            *projected_topics(self.settings), **aiokafka_options(self.settings),
            group_id=projector_group(self.settings),
            group_instance_id=f"{self.settings.instance_id}-projector" if self.settings.instance_id else None,
            enable_auto_commit=False, auto_offset_reset="earliest",
            isolation_level="read_committed",  # outputs of an aborted transaction (exactly-once) never count
            session_timeout_ms=10000, heartbeat_interval_ms=1000)
        try:
            await models.client.ping()
            self.health.redis_up = True
            await consumer.start()
            log.info("projector following %s into %s (prefix %r)", ", ".join(projected_topics(self.settings)),
                     self.settings.redis_display, self.settings.redis_prefix)
            await self._loop(models, consumer)
        finally:
            self.health.ready = False
            await consumer.stop()
            await models.close()

    async def _loop(self, models: ReadModels, consumer: AIOKafkaConsumer) -> None:
        guard: Guard | None = None
        rewound: set[str] = set()  # partitions with no position, sent back to their beginning
        while True:
            batch = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
            status = await models.status()
            self.health.redis_up = True
            if not status.ready:
                self.health.ready, self.health.problem = False, status.problem()
                await self.repair(models, status)
                guard = None
                continue
            if guard != Guard(status.epoch, status.shards):  # (re)built or checked: go on from Redis's positions
                guard, rewound = Guard(status.epoch, status.shards), set()
                await self._resync(consumer, models, guard, rewound)
                continue
            self.health.ready, self.health.problem = True, ""
            messages = await self._unapplied(consumer, models, guard, batch, rewound)
            try:
                self.metrics["projector_applied"] += await models.apply(
                    plans(self.settings, models.keys, messages, self.metrics), guard.epoch)
                if batch:
                    await models.advance(await assigned_positions(consumer), guard)
            except EpochChanged:
                guard = None
                continue
            await consumer.commit()
            await self._measure_lag(consumer)

    async def _unapplied(self, consumer: AIOKafkaConsumer, models: ReadModels, guard: Guard, batch: dict,
                         rewound: set[str]) -> list:
        """The batch's records Redis has not applied yet, in topic-partition order. A
        partition whose Redis position is behind the batch is sent back there (Redis lost
        them: the group commits only what Redis applied); one without a position, to its
        beginning (once per epoch)."""
        if not batch:
            return []
        positions = await models.positions(guard.shards)
        kept = []
        for tp in sorted(batch, key=lambda tp: (tp.topic, tp.partition)):
            field = position_field(tp.topic, tp.partition)
            held = positions.get(field)
            first = batch[tp][0].offset
            if held is None and field in rewound:
                held = first  # read from its beginning
            if held is None or held < first:
                if held is not None:
                    self._lost(field, held, first)
                await seek_or_rewind(consumer, tp, held)
                if held is None:
                    rewound.add(field)
                continue
            kept.extend(m for m in batch[tp] if m.offset >= held)
        return kept

    def _lost(self, field: str, held: int | None, reached: int) -> None:
        self.metrics["read_models_losses"] += 1
        log.warning("Redis lost projected records of %s (it holds up to offset %s, the projector had reached %d): "
                    "projecting them again", field, held, reached)

    async def _resync(self, consumer: AIOKafkaConsumer, models: ReadModels, guard: Guard, rewound: set[str]) -> None:
        """Every assigned partition to the position Redis holds for it (or its beginning)."""
        positions = await models.positions(guard.shards)
        for tp in consumer.assignment():
            field = position_field(tp.topic, tp.partition)
            await seek_or_rewind(consumer, tp, positions.get(field))
            if field not in positions:
                rewound.add(field)

    async def repair(self, models: ReadModels, status: Status) -> None:
        """Read models not ready: rebuild them (lost, or a rebuild left unfinished), or check
        what a restarted or failed-over Redis kept, rebuilding if it lost anything. One
        projector at a time (the lock); the others wait."""
        token = uuid.uuid4().hex
        if not await models.lock(token, LOCK_MS):
            await asyncio.sleep(1)  # another projector repairs
            return
        try:
            if status.epoch is None:
                await self._rebuild(models, token, "Redis holds no read models")
            elif not status.complete:
                await self._rebuild(models, token, "a rebuild was left unfinished")
            elif status.lost:
                await self._rebuild(models, token, f"{len(status.lost)} Redis shard(s) came back without the read models")
            else:
                await self._check(models, token, status)
        finally:
            await models.unlock(token)

    async def _check(self, models: ReadModels, token: str, status: Status) -> None:
        """Each restarted or failed-over shard holds every record up to the group's
        committed offsets (its positions say so): it is marked checked on its new server;
        else the read models are rebuilt."""
        committed = await Admin(self.settings).committed(projector_group(self.settings), retry_for=10)
        behind = {}
        for shard in status.unchecked:
            positions = await models.shard_positions(shard)
            behind |= {position_field(t, p): (positions.get(position_field(t, p)), offset)
                       for (t, p), offset in committed.items() if (positions.get(position_field(t, p)) or 0) < offset}
        if not behind:
            for shard in status.unchecked:
                await models.mark_checked(status.epoch, shard)
            log.warning("Redis restarted or failed over (%d of %d shards): it kept every projected record",
                        len(status.unchecked), len(status.shards))
            return
        for field, (held, offset) in sorted(behind.items()):
            self._lost(field, held, offset)
        await self._rebuild(models, token, f"Redis came back without records it had applied ({len(behind)} partitions)")

    async def _measure_lag(self, consumer: AIOKafkaConsumer) -> None:
        lag = {}
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            if end is not None:
                lag[(base_name(tp.topic, self.settings.topic_prefix), tp.partition)] = max(0, end - await consumer.position(tp))
        self.health.lag = lag

    # ---- rebuilding -------------------------------------------------------------------------
    async def rebuild(self, models: ReadModels, reason: str, progress=None) -> dict[str, int]:
        """Rebuild the read models from the beginning of the topics, once the rebuild lock
        is free (`xpbank projections rebuild`)."""
        token = uuid.uuid4().hex
        while not await models.lock(token, LOCK_MS):
            await asyncio.sleep(1)
        try:
            return await self._rebuild(models, token, reason, progress)
        finally:
            await models.unlock(token)

    async def _rebuild(self, models: ReadModels, token: str, reason: str, progress=None) -> dict[str, int]:
        """Holding the lock: a new epoch (readers answer 503), every key deleted, every
        record projected from the beginning to the topics' ends, then ready."""
        epoch = uuid.uuid4().hex
        self.health.rebuilding, self.health.ready = True, False
        self.metrics["read_models_rebuilds"] += 1
        started, counts = time.monotonic(), Counter()
        try:
            guard = await models.begin_rebuild(epoch, reason)
            log.warning("rebuilding the read models from the topics (%s) as epoch %s", reason, epoch[:8])
            counts["keys_deleted"] = await models.clear()
            async for messages, ends in read_to_end(self.settings, projected_topics(self.settings)):
                if not await models.keep_lock(token, LOCK_MS):
                    raise RuntimeError("the rebuild lock expired: another projector took the rebuild over")
                counts["applied"] += await models.apply(plans(self.settings, models.keys, messages, counts), epoch)
                await models.advance(ends, guard)
                (progress or _log_progress)(counts, started)
            if not await models.finish_rebuild(epoch, guard):
                raise EpochChanged("a Redis node changed during the rebuild: it starts again")
            log.warning("read models rebuilt: %d records read, %d upserts applied in %.1f s",
                        sum(v for k, v in counts.items() if k.startswith("projector_in:")), counts["applied"],
                        time.monotonic() - started)
            return dict(counts)
        finally:
            self.health.rebuilding = False


def _read_so_far(counts: Counter, started: float) -> str:
    read = sum(v for k, v in counts.items() if k.startswith("projector_in:"))
    return f"rebuild: {read:,} records read, {counts['applied']:,} applied ({time.monotonic() - started:.0f}s)"


_logged = [0.0]


def _log_progress(counts: Counter, started: float) -> None:
    """A live projector's rebuild: its progress in the log every 10 s."""
    if time.monotonic() - _logged[0] >= 10:
        _logged[0] = time.monotonic()
        log.info(_read_so_far(counts, started))


def _print_progress(counts: Counter, started: float) -> None:
    print("\r" + _read_so_far(counts, started), end="", file=sys.stderr, flush=True)


def _is_redis_error(exc: BaseException) -> bool:
    return type(exc).__module__.startswith("redis")


async def project(settings: Settings, metrics: Counter | None = None) -> None:
    """The projector as a task of another process (the worker's)."""
    await Projector(settings, metrics).run()


async def rebuild(settings: Settings) -> dict[str, int]:
    """`xpbank projections rebuild`: rebuild now (after any rebuild under way). Live
    projectors pause meanwhile and go on from where the rebuild left every partition."""
    models = ReadModels.connect(settings)
    try:
        holder = await models.lock_holder()
        if holder is not None:
            print("another projector is rebuilding the read models: waiting for it to finish", file=sys.stderr)
        counts = await Projector(settings).rebuild(models, "xpbank projections rebuild", _print_progress)
        print(file=sys.stderr)
        return counts
    finally:
        await models.close()
