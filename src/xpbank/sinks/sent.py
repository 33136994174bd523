"""What the Caliper sink has sent, kept in Kafka (it survives a lost disk): the compacted
topic `xpbank-sink-caliper-sent`, partitioned as `xp.facts.v1` (a fact's records go to
its fact's partition, so a sink restores exactly the partitions it is assigned).

One record per (factId, generation, revision) processed: `xp` is what the analytics
server holds for the factId once `event` is delivered. Before an event is sent its
record carries the event (written ahead); once the batch is acknowledged (or refused for
good) the fact's latest record is written again without it, and its older records are
deleted (tombstones). Restoring reads each factId's live records: the greatest
(generation, revision) is the state, and the events written after the last record
without one are sent again, byte for byte: a sink killed at any instant resends the same
events (same ids, same values) and the analytics server's dedupe by id keeps the sum
exact. Records keyed per revision also mean a late write of an older revision (a former
owner finishing after a rebalance) can never hide a newer one."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from xpbank.sinks.analytics import Sent

SEPARATOR = "\x1f"  # sourcedIds, so factIds, hold no control character (SPEC §2.5)


@dataclass(frozen=True)
class Pending:
    """An event written ahead and not known delivered, and where its fact record was."""

    event: dict
    origin: tuple[int, int]  # (partition, offset)


@dataclass(frozen=True)
class Held:
    """A factId's state: what the server holds once its events are delivered, the record
    that says so, events still to send again (oldest first) and older records to delete."""

    sent: Sent
    key: bytes
    pending: tuple[Pending, ...] = ()
    stale: tuple[bytes, ...] = ()


def record_key(fact_id: str, generation: int, revision: int) -> bytes:
    return f"{fact_id}{SEPARATOR}{generation}.{revision}".encode()


def record_value(fact_id: str, sent: Sent, event: dict | None, origin: tuple[int, int] = (-1, -1)) -> bytes:
    return orjson.dumps({"factId": fact_id, "generation": sent.generation, "revision": sent.revision, "xp": sent.xp,
                         "event": event, "partition": origin[0], "offset": origin[1]})


def fold(live: dict[str, dict[bytes, dict]], key: bytes, value: bytes | None) -> None:
    """Apply one record of the store to the live records per factId (a tombstone deletes one)."""
    fact_id = key.split(SEPARATOR.encode(), 1)[0].decode()
    if value is None:
        live.get(fact_id, {}).pop(key, None)
    else:
        live.setdefault(fact_id, {})[key] = orjson.loads(value)


def held_of(records: dict[bytes, dict]) -> Held:
    """A factId's state from its live records: the greatest (generation, revision) is
    what the server holds once delivered; events written ahead after the last record
    written without one (the last batch that finished) are sent again."""
    order = sorted(records.items(), key=lambda item: (item[1]["generation"], item[1]["revision"]))
    key, latest = order[-1]
    settled = max(((d["generation"], d["revision"]) for _, d in order if d["event"] is None), default=(0, 0))
    pending = tuple(Pending(d["event"], (d["partition"], d["offset"])) for _, d in order
                    if d["event"] is not None and (d["generation"], d["revision"]) > settled)
    return Held(Sent(latest["generation"], latest["revision"], latest["xp"]), key, pending,
                tuple(k for k, _ in order[:-1]))


async def restore(consumer: AIOKafkaConsumer, topic: str, partitions: list[int]) -> dict[str, Held]:
    """Every factId's state in `partitions`, read from their beginning to their end."""
    live: dict[str, dict[bytes, dict]] = {}
    tps = [TopicPartition(topic, p) for p in partitions]
    if not tps:
        return {}
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    ends = await consumer.end_offsets(tps)
    remaining = {tp for tp in tps if ends[tp] > 0}
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=1000)
        for tp, messages in batch.items():
            for m in messages:
                fold(live, m.key, m.value)
        remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
    return {fact_id: held_of(records) for fact_id, records in live.items() if records}


class SentStore:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer, self.topic = producer, topic

    async def write(self, records: list[tuple[int, bytes, bytes | None]]) -> None:
        """(partition, key, value or None for a tombstone), acknowledged before it returns."""
        pending = [await self.producer.send(self.topic, value=value, key=key, partition=partition)
                   for partition, key, value in records]
        for future in pending:
            await future
