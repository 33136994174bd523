"""Every record of a learner partition is processed once, in offset order, whatever the
consumer delivers.

faust-streaming 0.15.3 can deliver a record it fetched before a rebalance after the
partition was seeked back, and then drop the records in between as already read
(faust-streaming #216/#221). So the learner agent keeps, per (topic, partition), the
last offset it processed (in a changelog-backed table, written with the record's other
effects) and, when a record arrives past a hole, reads the missing range itself with a
group-less consumer before going on. Input topics are never transactional or compacted,
so their offsets are contiguous and a hole always means records the agent never saw.
The records read so are acknowledged to Faust like delivered ones: its commit only moves
over acknowledged offsets, and would otherwise stay behind the hole for ever."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from xpbank.kafka.admin import Admin
from xpbank.kafka.connection import aiokafka_options
from xpbank.config import Settings
from xpbank.runtime.faust import internals

log = logging.getLogger("xpbank")
STALL_CHECK_SECONDS = 5.0  # a partition with no progress across two checks is read again


class Ledger:
    """The last offset processed per (topic, partition), in memory, with its copy in the
    partition's state (written by the unit with the record's state, at the checkpoint).
    Forgotten at every rebalance: another worker may have moved a partition on meanwhile."""

    def __init__(self, stored) -> None:
        self.stored = stored  # (topic, partition) -> offset in the table, or None
        self.memory: dict[tuple[str, int], int] = {}
        self.generation: int | None = None

    def follow_generation(self, generation: int) -> None:
        if generation != self.generation:
            self.memory.clear()
            self.generation = generation

    def last(self, topic: str, partition: int) -> int | None:
        key = (topic, partition)
        if key not in self.memory:
            stored = self.stored(topic, partition)
            if stored is None:
                return None
            self.memory[key] = stored
        return self.memory[key]

    def processed(self, topic: str, partition: int, offset: int) -> None:
        self.memory[(topic, partition)] = offset


class GapReader:
    """Reads offset ranges of one partition at a time, outside any consumer group."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.consumer: AIOKafkaConsumer | None = None

    async def _started(self) -> AIOKafkaConsumer:
        if self.consumer is None:
            consumer = AIOKafkaConsumer(
                **aiokafka_options(self.settings), group_id=None,
                enable_auto_commit=False, auto_offset_reset="earliest",
            )
            try:
                await consumer.start()
            except BaseException:  # the broker away: the next call starts a new one
                await consumer.stop()
                raise
            self.consumer = consumer
        return self.consumer

    async def log_start(self, topic: str, partition: int) -> int:
        tp = TopicPartition(topic, partition)
        return (await (await self._started()).beginning_offsets([tp]))[tp]

    async def read(self, topic: str, partition: int, start: int, end: int) -> list[ConsumerMessage]:
        """Records with start <= offset < end (fewer if retention deleted some or the
        partition ends before)."""
        consumer = await self._started()
        tp = TopicPartition(topic, partition)
        end = min(end, (await consumer.end_offsets([tp]))[tp])
        consumer.assign([tp])
        consumer.seek(tp, start)
        records: list[ConsumerMessage] = []
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=min(500, end - start))
            for r in batch.get(tp, []):
                if start <= r.offset < end:
                    records.append(ConsumerMessage(
                        r.topic, r.partition, r.offset, None if r.timestamp is None else r.timestamp / 1000.0,
                        r.timestamp_type, list(r.headers or []), r.key, r.value, r.checksum,
                        r.serialized_key_size, r.serialized_value_size, TP(r.topic, r.partition)))
        return records

    async def end_offsets(self, tps: list) -> dict:
        if not tps:
            return {}
        ends = await (await self._started()).end_offsets([TopicPartition(tp.topic, tp.partition) for tp in tps])
        return {TP(tp.topic, tp.partition): end for tp, end in ends.items()}

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
            self.consumer = None


# A partition can also stall: assigned, behind its end, yet never fetched again (left
# paused by an interrupted recovery), with Faust's commit stuck behind a record it
# dropped, or with records at its end committed but never delivered. The watchdog below notices a partition that made no progress between two
# checks and sends the consumer back to the first record not known to be done; what
# was already processed is then skipped by the ledger.

@dataclass(frozen=True)
class Progress:
    committed: int | None  # the group's committed offset (next to read)
    processed: int | None  # the ledger: last offset the agent processed
    end: int  # the partition's end offset


def resume_offset(progress: Progress) -> int | None:
    """Where to re-read from: the earliest record not known to be done, by Faust's commit
    or by the ledger (None: from the log start, as nothing here was processed yet). With
    no commit at all, from the last processed record: it is skipped by the ledger but
    acknowledged, so Faust has something to commit even when it was the partition's last
    record (from the next one, nothing would be read and the commit would never move)."""
    if progress.processed is None:
        return None
    if progress.committed is None:
        return progress.processed
    return min(progress.committed, progress.processed + 1)


def stalled(before: dict, now: dict) -> dict:
    """Partitions (keys of `now`) behind their end whose committed offset and ledger have
    not moved since the previous check, mapped to the offset to resume from (None: from
    the start of the log)."""
    kicks = {}
    for tp, progress in now.items():
        done = -1 if progress.processed is None else progress.processed
        behind = (progress.committed or 0) < progress.end or done + 1 < progress.end  # not fetched / committed unprocessed
        if behind and before.get(tp) is not None and _position(before[tp]) == _position(progress):
            kicks[tp] = resume_offset(progress)
    return kicks


def _position(progress: Progress) -> tuple:
    return progress.committed, progress.processed


# Kicks of one partition in a row, at the same position, after which seeking back is
# given up: the agent reads the partition's records itself and commits with Faust's own
# commit (a fetch that never resumes, or acknowledgements that never move its commit).
TAKE_OVER_AFTER = 3


def take_overs(counts: dict, kicks: dict) -> tuple[dict, set]:
    """Kicks in a row per partition (one not kicked now starts again at 0), and the
    partitions kicked TAKE_OVER_AFTER times in a row (their count starts again)."""
    counts = {tp: counts.get(tp, 0) + 1 for tp in kicks}
    due = {tp for tp, n in counts.items() if n >= TAKE_OVER_AFTER}
    return {tp: 0 if tp in due else n for tp, n in counts.items()}, due


async def commit_processed(consumer, tp: TP, offset: int) -> None:
    """Commit `offset` (the next to read) for `tp` through Faust's own commit path."""
    await internals.commit_offsets(consumer, {tp: offset})


class Continuity:
    """The learner agent's continuity: the ledger, the gap reader and the watchdog with
    its take-over. `process(message)` applies one record (within the checkpoint lock)."""

    def __init__(self, settings: Settings, app, checkpoint, stored: Callable[[str, int], int | None],
                 process: Callable[[object], Awaitable[None]], metrics, learner_topics: set[str]) -> None:
        self.settings, self.app, self.checkpoint, self.process = settings, app, checkpoint, process
        self.metrics, self.learner_topics = metrics, learner_topics
        self.ledger = Ledger(stored)
        self.gaps = GapReader(settings)
        self.last_check: dict = {}
        self.kicked: dict = {}  # partition -> kicks in a row
        self.admin: Admin | None = None  # made on the first check, kept for the next ones

    async def deliver(self, message) -> None:
        """One delivered record: skipped when the ledger has it, after the records never
        delivered before it (read directly)."""
        last = self.ledger.last(message.topic, message.partition)
        if last is not None and message.offset <= last:  # redelivered after a crash or rebalance
            log.debug("redelivered topic=%s partition=%s offset=%s", message.topic, message.partition, message.offset)
            self.metrics["redelivered"] += 1
            return
        start = last + 1 if last is not None else await self.gaps.log_start(message.topic, message.partition)
        if message.offset > start:
            missed = await self.gaps.read(message.topic, message.partition, start, message.offset)
            log.warning("records never delivered, read directly topic=%s partition=%s offsets=%d..%d count=%d",
                        message.topic, message.partition, start, message.offset - 1, len(missed))
            self.metrics["refetched"] += len(missed)
            await self._process_all(missed)
        await self.process(message)

    async def _process_all(self, messages) -> None:
        for message in messages:
            await self.process(message)
            self.app.consumer.ack(message)

    async def take_over(self, tp, end: int) -> None:
        """Seeking back did not help: read the records not processed yet directly, write
        a checkpoint, and commit what the ledger has processed."""
        checkpoint = self.checkpoint
        async with checkpoint.lock:
            if tp.partition in checkpoint.outbox.unrecovered:
                await checkpoint.recover(tp.partition)
            last = self.ledger.last(tp.topic, tp.partition)
            start = last + 1 if last is not None else await self.gaps.log_start(tp.topic, tp.partition)
            missed = await self.gaps.read(tp.topic, tp.partition, start, end) if start < end else []
            await self._process_all(missed)
            await checkpoint.flush()
            done = self.ledger.last(tp.topic, tp.partition)
        if done is not None:
            await commit_processed(self.app.consumer, tp, done + 1)
        log.warning("partition made no progress in %d checks in a row, reading it again did not help: read %d "
                    "records directly and committed up to offset %s topic=%s partition=%s", TAKE_OVER_AFTER,
                    len(missed), None if done is None else done + 1, tp.topic, tp.partition)
        self.metrics["stall_take_overs"] += 1

    def calm(self, broker_up: bool | None) -> bool:
        app = self.app
        return (not app.rebalancing and app.tables.recovery.completed.is_set() and app.consumer.flow_active
                and bool(broker_up))

    async def watch(self, broker_up: bool | None, curriculum_ready: bool, resumes: Callable[[TP], bool]) -> None:
        """One check of the watchdog: partitions with no progress since the last calm
        check are sent back (`resumes(tp)`: whether to resume its fetching too), and
        taken over after TAKE_OVER_AFTER kicks in a row."""
        if not self.calm(broker_up):
            self.last_check.clear()  # progress is only compared across a calm stretch
            return
        assigned = [tp for tp in self.app.consumer.assignment() if tp.topic in self.learner_topics]
        try:
            ends = await self.gaps.end_offsets(assigned)
            self.admin = self.admin or Admin(self.settings)
            committed = await self.admin.committed(self.app.conf.id, retry_for=5)
        except Exception:
            self.last_check.clear()  # the broker away: compare again from the next calm check
            raise
        now = {tp: Progress(committed.get(tp), self.ledger.last(tp.topic, tp.partition), ends[tp]) for tp in assigned}
        kicks = stalled(self.last_check, now)
        counts, due = take_overs(dict(self.kicked), kicks)
        self.kicked = counts
        for tp, offset in kicks.items():
            if tp in due and curriculum_ready:
                await self.take_over(tp, now[tp].end)
                continue
            start = offset if offset is not None else await self.gaps.log_start(tp.topic, tp.partition)
            log.warning("partition made no progress, reading it again topic=%s partition=%s from=%s end=%s",
                        tp.topic, tp.partition, start, now[tp].end)
            self.metrics["stall_restarts"] += 1
            if resumes(tp):
                self.app.consumer.resume_partitions({tp})
            await self.app.consumer.seek(tp, start)
        self.last_check = now
