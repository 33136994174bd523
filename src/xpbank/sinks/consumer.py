"""The Kafka side of a sink: its own consumer group (`{prefix}xpbank-sink-{name}`) on
`xp.facts.v1`, one batch at a time handed to the sink, offsets committed only once the
batch is written or dead-lettered (SPEC §3.7).

- **Ownership.** A rebalance waits for the batch in hand (the revocation callback takes
  the same lock), so a partition never has two sinks writing it; records of a partition
  lost meanwhile are left to its next owner. Poll interval and rebalance timeout are long
  for that: a batch may wait out a server outage.
- **Never exits.** Anything failing on the Kafka side (the broker away) stops the
  consumer, marks the broker down on /healthz, waits and starts again from the committed
  offsets; the sinks' writes are idempotent, so a batch done again changes nothing.
- **`until_caught_up`**: stops once the partitions it owns are written up to the end
  offsets they had when it started."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from xpbank.config import Settings
from xpbank.contract.topics import FACTS, sink_group
from xpbank.kafka.admin import TopicSetupError
from xpbank.kafka.connection import aiokafka_options
from xpbank.sinks.metrics import Health, SinkMetrics
from xpbank.sinks.retry import backoff

log = logging.getLogger("xpbank.sinks")
BATCH_RECORDS = 500
MAX_POLL_INTERVAL_MS = 24 * 3600 * 1000  # a batch may wait out a long server outage
REBALANCE_TIMEOUT_MS = 30 * 60 * 1000  # how long a rebalance waits for the batch in hand
LAG_EVERY_SECONDS = 5.0
STOP_SECONDS = 10.0
FILL_SECONDS = 0.05

Batch = dict[int, list]  # partition -> its records, in offset order


class Sink(Protocol):
    async def assigned(self, partitions: list[int]) -> None: ...
    async def revoked(self, partitions: list[int]) -> None: ...
    async def handle(self, batch: Batch) -> None: ...

    @property
    def pending(self) -> bool: ...  # work held over (events to resend) even without new records


class SetupRefused(TopicSetupError):
    """A setup only a person can fix (the Caliper store partitioned unlike the facts): the
    sink exits instead of retrying."""


class Barrier(ConsumerRebalanceListener):
    """Revocations wait for the batch in hand; assignments let the sink restore its state
    before any record of the partition is handed to it."""

    def __init__(self, sink: Sink, lock: asyncio.Lock, owned: set[int]) -> None:
        self.sink, self.lock, self.owned = sink, lock, owned
        self.failed: BaseException | None = None  # aiokafka only logs a listener's error: the loop raises it

    async def on_partitions_revoked(self, revoked) -> None:
        async with self.lock:
            lost = sorted(tp.partition for tp in revoked)
            self.owned.difference_update(lost)
            await self.sink.revoked(lost)

    async def on_partitions_assigned(self, assigned) -> None:
        async with self.lock:
            gained = sorted(tp.partition for tp in assigned)
            try:
                await self.sink.assigned(gained)
            except Exception as exc:  # noqa: BLE001 - a partition is never written without its state
                self.failed = exc
                return
            self.owned.update(gained)


async def follow(settings: Settings, name: str, make_sink: Callable[[], Awaitable[tuple[Sink, Callable]]],
                 metrics: SinkMetrics, health: Health, until_caught_up: bool = False) -> None:
    """Run the sink until cancelled (or caught up), starting again after any failure but
    SetupRefused."""
    failures, loop = 0, asyncio.get_running_loop()
    while True:
        started = loop.time()
        try:
            if await _consume(settings, name, make_sink, metrics, until_caught_up):
                return
        except SetupRefused:
            raise
        except (Exception, asyncio.CancelledError) as exc:  # noqa: BLE001 - the broker away and the like
            if isinstance(exc, asyncio.CancelledError) and asyncio.current_task().cancelling():
                raise  # stopped (SIGTERM): a CancelledError from inside aiokafka is a failure like another
            failures = 1 if loop.time() - started > 60 else failures + 1
            health.broker_failed(f"{type(exc).__name__}: {exc}"[:300])
            wait = backoff(failures, 30.0, random.random(), base=1.0)
            log.warning("sink %s stopped (%s: %s); starting again in %.1f s", name, type(exc).__name__, exc, wait)
            await asyncio.sleep(wait)


class Progress:
    """Per owned partition the offset written up to (committed), the end offsets the
    sink must reach (`until_caught_up`), and the lag."""

    def __init__(self, consumer: AIOKafkaConsumer, topic: str, metrics: SinkMetrics) -> None:
        self.consumer, self.topic, self.metrics = consumer, topic, metrics
        self.done: dict[int, int] = {}
        self.goal: dict[int, int] | None = None

    def tp(self, partition: int) -> TopicPartition:
        return TopicPartition(self.topic, partition)

    async def ends(self, partitions) -> dict[int, int]:
        found = await self.consumer.end_offsets([self.tp(p) for p in partitions])
        return {tp.partition: offset for tp, offset in found.items()}

    async def measure(self, owned: set[int]) -> None:
        for p in owned - set(self.done):
            self.done[p] = await self.consumer.committed(self.tp(p)) or 0
        for p in set(self.done) - owned:
            del self.done[p]
        ends = await self.ends(owned) if owned else {}
        self.metrics.lag = {p: max(0, ends[p] - self.done[p]) for p in owned}

    def committed(self, offsets: dict[int, int]) -> None:
        """A batch committed: its partitions' lag from the ends the last fetch saw (no request)."""
        self.done.update(offsets)
        for p in offsets:
            end = self.consumer.highwater(self.tp(p))
            if end is not None:
                self.metrics.lag[p] = max(0, end - offsets[p])

    def reached(self, owned: set[int]) -> bool:
        return bool(owned) and self.goal is not None and all(self.done.get(p, 0) >= self.goal.get(p, 0) for p in owned)


async def _consume(settings: Settings, name: str, make_sink, metrics: SinkMetrics, until_caught_up: bool) -> bool:
    topic = settings.topic_prefix + FACTS
    sink, close = await make_sink()
    lock, owned = asyncio.Lock(), set()
    consumer = AIOKafkaConsumer(
        **aiokafka_options(settings), group_id=sink_group(settings.topic_prefix, name), enable_auto_commit=False,
        auto_offset_reset="earliest", isolation_level="read_committed", session_timeout_ms=10000,
        heartbeat_interval_ms=1000, max_poll_interval_ms=MAX_POLL_INTERVAL_MS, rebalance_timeout_ms=REBALANCE_TIMEOUT_MS)
    barrier = Barrier(sink, lock, owned)
    try:
        consumer.subscribe([topic], listener=barrier)
        await consumer.start()
        progress = Progress(consumer, topic, metrics)
        loop = asyncio.get_running_loop()
        measured_at = 0.0
        while True:
            if until_caught_up and progress.goal is None and consumer.partitions_for_topic(topic):
                progress.goal = await progress.ends(consumer.partitions_for_topic(topic))
            fetched = await fill(consumer, await consumer.getmany(timeout_ms=1000, max_records=BATCH_RECORDS))
            if barrier.failed is not None:
                raise barrier.failed
            if not owned:  # nothing assigned (yet): getmany answers at once
                await asyncio.sleep(0.5)
            async with lock:
                batch = {tp.partition: records for tp, records in fetched.items() if tp.partition in owned and records}
                if batch or sink.pending:
                    metrics.facts += sum(len(records) for records in batch.values())
                    started = loop.time()
                    await sink.handle(batch)
                    log.debug("sink %s: %d records in %.3f s", name, sum(map(len, batch.values())), loop.time() - started)
                    offsets = {p: records[-1].offset + 1 for p, records in batch.items()}
                    if offsets:
                        await consumer.commit({progress.tp(p): offset for p, offset in offsets.items()})
                        progress.committed(offsets)
                if loop.time() - measured_at >= LAG_EVERY_SECONDS:
                    await progress.measure(owned)
                    measured_at = loop.time()
                if until_caught_up and not sink.pending and progress.reached(owned):
                    log.info("sink %s caught up: every fact up to the end of %s as it was at start is written",
                             name, topic)
                    return True
    finally:  # bounded: with the broker away, stopping a client can wait for ever
        try:
            await asyncio.wait_for(consumer.stop(), STOP_SECONDS)
        except (Exception, asyncio.TimeoutError) as exc:  # noqa: BLE001 - leaving anyway
            log.warning("sink %s: the consumer did not stop cleanly (%s)", name, type(exc).__name__)
        finally:
            await asyncio.wait_for(close(), STOP_SECONDS)


async def fill(consumer: AIOKafkaConsumer, fetched: dict) -> dict:
    """Top a batch up to BATCH_RECORDS with what arrives within FILL_SECONDS: a fetch
    often brings a few records per partition, and every batch costs the sink two round
    trips to the broker and its requests' slowest answer."""
    loop = asyncio.get_running_loop()
    count, deadline = sum(map(len, fetched.values())), loop.time() + FILL_SECONDS
    while 0 < count < BATCH_RECORDS and loop.time() < deadline:
        more = await consumer.getmany(timeout_ms=10, max_records=BATCH_RECORDS - count)
        if not more:
            break
        for tp, records in more.items():
            fetched[tp] = fetched.get(tp, []) + records
            count += len(records)
    return fetched
