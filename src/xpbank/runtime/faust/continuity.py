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

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from xpbank.contract.identifiers import escaped
from xpbank.kafka.connection import aiokafka_options
from xpbank.config import Settings
from xpbank.runtime.faust import internals

# Owner under which the per-partition ledger lives in the positions table; no learner
# sourcedId contains NUL.
DELIVERED = "\x00delivered"


def ledger_key(topic: str, partition: int) -> str:
    """(Kafka's topic names hold no `:`; escaped all the same, as every combined id is.)"""
    return f"{escaped(topic)}:{partition}"


class Ledger:
    """The last offset processed per (topic, partition), in memory, with its copy in the
    positions table (written by the agent with the record's state, at the checkpoint).
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
