"""Faust's table recovery in bulk (issue 25.3).

faust-streaming restores a changelog one record at a time through its recovery loop
(an event object, a queue, per-record bookkeeping: ~7,000 records/s here), so a worker
that lost its disk took 15-25 s to serve 100k pairs. Before Faust's recovery looks at a
newly assigned partition, this module reads that partition's changelog, from the offset
its database holds to the end, with confluent-kafka (librdkafka fetches and decodes in
C), and writes it to the partition's RocksDB database in batches, each batch with the
offset it reaches in the same atomic write, as Faust's own recovery leaves them. Faust's
recovery then finds nothing left to read, or reads only what arrived since.

It runs inside the rebalance callback, where the group coordinator does not hear from
this member, so it stops at a budget (0.4 x the session timeout) and leaves the rest to
Faust's recovery, which continues from the offset written last: correct either way, only
slower. Any error does the same, with one warning that names it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException, TopicPartition

from xpbank.runtime.faust.internals import RestoreTarget, is_partition_end

log = logging.getLogger("xpbank.restore")

BATCH = 5_000  # records per consume call and per RocksDB write
BUDGET_OF_SESSION = 0.4  # of the session timeout, spent at most in one rebalance


@dataclass
class Restored:
    """What a bulk restore read: records per partition."""

    records: dict[int, int] = field(default_factory=dict)
    complete: bool = True  # every partition reached its end within the budget
    seconds: float = 0.0


def restore_partitions(config: dict[str, str], targets: list[RestoreTarget], budget_s: float) -> Restored:
    """Read each target's changelog partition from after its persisted offset to its end
    (librdkafka's end-of-partition event), writing as it goes; stops at `budget_s`."""
    started = time.monotonic()
    deadline = started + budget_s
    consumer = Consumer(config | {
        "group.id": "xpbank-bulk-restore",  # required by librdkafka; never joined (assign, no commit)
        "enable.auto.commit": False, "enable.partition.eof": True,  # the end, even after offsets no record holds
        "isolation.level": "read_uncommitted",  # as Faust's at-least-once consumer reads it
        "fetch.max.bytes": 64 * 1024 * 1024, "queued.max.messages.kbytes": 256 * 1024})
    out = Restored()
    try:
        starts = []
        for target in targets:
            low, high = consumer.get_watermark_offsets(TopicPartition(target.topic, target.partition),
                                                       timeout=max(deadline - time.monotonic(), 0.1))
            persisted = target.persisted_offset()
            begin = max(low, -1 if persisted is None else persisted + 1)
            if begin < high:  # else nothing to read (and no end-of-partition event would come)
                starts.append(TopicPartition(target.topic, target.partition, begin))
        if starts:
            consumer.assign(starts)
            writers = {(t.topic, t.partition): t for t in targets}
            out.complete = _read(consumer, writers, {(tp.topic, tp.partition) for tp in starts}, out, deadline)
    finally:
        consumer.close()
    out.seconds = time.monotonic() - started
    return out


def _read(consumer: Consumer, writers: dict, reading: set, out: Restored, deadline: float) -> bool:
    """Consume until every partition read reached its end (True) or the deadline (False)."""
    while reading and time.monotonic() < deadline:
        batches: dict[tuple[str, int], list] = {}
        last: dict[tuple[str, int], int] = {}
        for message in consumer.consume(BATCH, timeout=min(0.5, max(deadline - time.monotonic(), 0.01))):
            tp = (message.topic(), message.partition())
            if (error := message.error()) is not None:
                if not is_partition_end(error):
                    raise KafkaException(error)
                reading.discard(tp)  # its records before the event are in `batches`
                continue
            batches.setdefault(tp, []).append((message.key(), message.value()))
            last[tp] = message.offset()
        for tp, items in batches.items():
            if not writers[tp].write(items, last[tp]):  # revoked meanwhile: its next owner restores it
                reading.discard(tp)
                continue
            out.records[tp[1]] = out.records.get(tp[1], 0) + len(items)
    return not reading


def bulk_restore(config: dict[str, str], session_timeout_s: float) -> Callable[[list[RestoreTarget]], object]:
    """The coroutine function faust's store awaits (internals.bulk_restoring_table); the
    reading runs in a thread so the event loop keeps serving the health endpoint."""
    async def restore(targets: list[RestoreTarget]) -> None:
        try:
            done = await asyncio.to_thread(restore_partitions, config, targets, BUDGET_OF_SESSION * session_timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure: Faust's recovery reads it instead, as always
            log.warning("bulk restore of %s failed (%s); Faust's recovery reads the changelog instead",
                        ", ".join(f"{t.topic}[{t.partition}]" for t in targets), exc)
            return
        if done.records:
            log.info("restored %s changelog records in bulk in %.2fs (partition: records %s)%s",
                     f"{sum(done.records.values()):,}", done.seconds, dict(sorted(done.records.items())),
                     "" if done.complete else "; the budget ran out, Faust's recovery reads the rest")
    return restore
