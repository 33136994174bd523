"""What every engine does with a consumed record around `handle_record`: make it an
`InputRecord` (a routed copy carries its origin in headers, so dead letters still name
the original topic, partition and offset), and count and log what came out."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import lru_cache

from aiokafka.partitioner import murmur2

from xpbank.contract.topics import base_name
from xpbank.contract.records import InputRecord
from xpbank.processing.handlers import REDELIVERED, Handled

log = logging.getLogger("xpbank")
ORIGIN_HEADERS = ("xpbank-origin-topic", "xpbank-origin-partition", "xpbank-origin-offset", "xpbank-origin-key")
# The owner of a record on another partition than its key's: no learner (a sourcedId is
# never a lone NUL), so every event of it is routed to its learner's own partition.
MISPLACED = "\x00"
_warned: set[str] = set()
_new_record = tuple.__new__  # InputRecord(...) without its Python-level __new__: one per record


@lru_cache(maxsize=1 << 16)
def key_partition(key: bytes, partitions: int) -> int:
    """The partition of `key` by murmur2, as the Java client, aiokafka (our CLI, gateway
    and Faust), Quix's producer and the re-key topic place it."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def from_millis(ms: int | None) -> datetime | None:
    return None if ms is None or ms < 0 else datetime.fromtimestamp(ms / 1000, UTC)


def from_seconds(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def input_record(topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                 timestamp: datetime | None, prefix: str) -> InputRecord:
    """A record read in place from an input topic (`topic` as on the broker)."""
    return _new_record(InputRecord, (base_name(topic, prefix), key, value, timestamp, partition, offset, topic))


def learner_record(topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                   headers: Iterable[tuple[str, bytes]] | None, timestamp: datetime | None, prefix: str,
                   rekeyed_name: str, partitions: int) -> tuple[InputRecord, str, bool]:
    """The record as its producer sent it, the learner owning it here, and whether it is
    a routed copy (whose origin travels in headers).

    A learner's state lives on the partition murmur2 gives its key. A record keyed by
    the learner is theirs in place only on that partition: a producer with another
    partitioner (librdkafka's default, CRC32) puts it elsewhere, and it is then routed
    like a record keyed by a device (owner MISPLACED), so one learner's state is never
    split over two partitions."""
    owner = (key or b"").decode("utf-8", "replace")
    if topic != rekeyed_name:
        if key and key_partition(key, partitions) != partition:
            if topic not in _warned:
                _warned.add(topic)
                log.warning("records keyed by learner arrive on other partitions than murmur2 gives their key "
                            "(topic=%s partition=%s): their producer's partitioner is not murmur2; they are routed "
                            "to their learner's partition (set the producer's partitioner to murmur2_random)",
                            topic, partition)
            owner = MISPLACED
        return input_record(topic, partition, offset, key, value, timestamp, prefix), owner, False
    found = dict(headers or ())
    origin = found[ORIGIN_HEADERS[0]].decode()
    record = InputRecord(
        topic=base_name(origin, prefix), key=found.get(ORIGIN_HEADERS[3]) or None, value=value, timestamp=timestamp,
        partition=int(found[ORIGIN_HEADERS[1]]), offset=int(found[ORIGIN_HEADERS[2]]), topic_full_name=origin,
    )
    return record, owner, True


def origin_headers(record: InputRecord) -> list[tuple[str, bytes]]:
    values = (record.topic_full_name or record.topic, str(record.partition), str(record.offset))
    headers = [(name, value.encode()) for name, value in zip(ORIGIN_HEADERS, values)]
    return headers + [(ORIGIN_HEADERS[3], record.key or b"")]


def observe(metrics: Counter, record: InputRecord, handled: Handled, rekeyed: bool = False,
            owner: str | None = None) -> None:
    """Count a processed record and its outputs; log awards and dead letters."""
    metrics["records_in:rekeyed" if rekeyed else f"records_in:{record.topic}"] += 1
    if owner is MISPLACED:
        metrics["records_misplaced"] += 1
    for name, count in handled.counted:  # (name, amount) pairs, a name possibly twice
        metrics[name] += count
    if handled is REDELIVERED:
        log.info("redelivered record skipped topic=%s partition=%s offset=%s", record.topic_full_name,
                 record.partition, record.offset)
    for out in handled.outputs:
        metrics[f"records_out:{out.topic}"] += 1
        kind = type(out.value).__name__
        if kind == "BankedXpAwarded":
            v = out.value
            metrics["awards" if v.revision == 1 else "award_revisions"] += 1
            log.info("award user=%s resource=%s xp=%d revision=%d exercise=%s", v.userSourcedId, v.resourceSourcedId,
                     v.xp, v.revision, v.exerciseSourcedId)
        elif kind == "DeadLetter":
            log.info("dead-letter reason=%s topic=%s offset=%s", out.value.reason, out.value.topic, out.value.offset)
