"""What the Caliper sink has sent, kept in Kafka (it survives a lost disk): the compacted
topic `xpbank-sink-caliper-sent`, partitioned as `xp.facts.v1` (a fact's records go to
its fact's partition, so a sink restores exactly the partitions it is assigned).

One record per (factId, generation, revision) processed: `xp` is what the analytics
server holds for the factId once `event` is delivered. Before an event is sent its
record carries the event (written ahead); once the server acknowledged (or refused it
for good) the record is written again without it, and the fact's older records are
deleted (tombstones). Restoring takes each factId's greatest (generation, revision):
an event still attached is sent again, byte for byte, so a sink killed at any instant
resends the same event (same id, same value) and the analytics server's dedupe by id
keeps the sum exact. Records keyed per revision also mean a late write of an older
revision (a former owner finishing after a rebalance) can never hide a newer one."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from xpbank.sinks.analytics import Sent

SEPARATOR = "\x1f"  # sourcedIds, so factIds, hold no control character (SPEC §2.5)


@dataclass(frozen=True)
class Held:
    """A factId's state: what is sent, the record that says so, and an event in flight
    with the place of the fact record it came from (partition, offset)."""

    sent: Sent
    key: bytes
    event: dict | None = None
    origin: tuple[int, int] = (-1, -1)


def record_key(fact_id: str, generation: int, revision: int) -> bytes:
    return f"{fact_id}{SEPARATOR}{generation}.{revision}".encode()


def record_value(fact_id: str, sent: Sent, event: dict | None, origin: tuple[int, int] = (-1, -1)) -> bytes:
    return orjson.dumps({"factId": fact_id, "generation": sent.generation, "revision": sent.revision, "xp": sent.xp,
                         "event": event, "partition": origin[0], "offset": origin[1]})


def fold(held: dict[str, Held], key: bytes, value: bytes | None) -> None:
    """Apply one record of the store to `held` (factId -> Held): the greatest wins."""
    if value is None:
        return
    doc = orjson.loads(value)
    sent = Sent(doc["generation"], doc["revision"], doc["xp"])
    current = held.get(doc["factId"])
    if current is None or (sent.generation, sent.revision) >= (current.sent.generation, current.sent.revision):
        held[doc["factId"]] = Held(sent, key, doc.get("event"), (doc.get("partition", -1), doc.get("offset", -1)))


async def restore(consumer: AIOKafkaConsumer, topic: str, partitions: list[int]) -> dict[str, Held]:
    """Every factId's state in `partitions`, read from their beginning to their end."""
    held: dict[str, Held] = {}
    tps = [TopicPartition(topic, p) for p in partitions]
    if not tps:
        return held
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    ends = await consumer.end_offsets(tps)
    remaining = {tp for tp in tps if ends[tp] > 0}
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=1000)
        for tp, messages in batch.items():
            for m in messages:
                fold(held, m.key, m.value)
        remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
    return held


class SentStore:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer, self.topic = producer, topic

    async def write(self, records: list[tuple[int, bytes, bytes | None]]) -> None:
        """(partition, key, value or None for a tombstone), acknowledged before it returns."""
        pending = [await self.producer.send(self.topic, value=value, key=key, partition=partition)
                   for partition, key, value in records]
        for future in pending:
            await future
