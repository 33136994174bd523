"""Copying the input topics under another topic prefix, the first step of growing the
partitions (docs/scaling.md): every record with its key, value, timestamp and headers,
partitioned again by its key on the new topics (so a learner's records stay in order, in
one partition). The group `<new prefix>xpbank-copy` remembers what was copied: run again,
it copies only what arrived since. At least once: a copy stopped half-way copies its last
batch again, whose event ids the workers recognise as duplicates."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from xpbank.config import Settings
from xpbank.contract.topics import INPUTS
from xpbank.kafka.admin import Admin, TopicSetupError
from xpbank.kafka.connection import aiokafka_options

BATCH = 5000


def copy_group(to_prefix: str) -> str:
    return f"{to_prefix}xpbank-copy"


async def copy_inputs(settings: Settings, to_prefix: str) -> Counter:
    """Copy what was not copied yet of every input topic (up to the ends they had when it
    started); returns the records copied per registry topic. The new topics must exist
    (`XPBANK_TOPIC_PREFIX=<new> xpbank topics create`)."""
    sources = {settings.topic_prefix + name: name for name in INPUTS}
    present = await Admin(settings).partitions(sources)
    targets = {to_prefix + name for name in INPUTS}
    missing = targets - {topic for topic, _ in await Admin(replace(settings, topic_prefix=to_prefix)).partitions(targets)}
    if missing:
        raise TopicSetupError(f"topic {sorted(missing)[0]} does not exist: create the new topics first "
                              f"(XPBANK_TOPIC_PREFIX={to_prefix} xpbank topics create)")
    consumer = AIOKafkaConsumer(**aiokafka_options(settings), group_id=copy_group(to_prefix), enable_auto_commit=False,
                                isolation_level="read_committed")
    producer = AIOKafkaProducer(**aiokafka_options(settings), enable_idempotence=True, acks="all", linger_ms=20,
                                max_batch_size=512 * 1024)
    await consumer.start()
    await producer.start()
    try:
        return await _copy(consumer, producer, [TopicPartition(t, p) for t, p in present], sources, to_prefix)
    finally:
        await producer.stop()
        await consumer.stop()


async def _copy(consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, partitions: list[TopicPartition],
                sources: dict[str, str], to_prefix: str) -> Counter:
    consumer.assign(partitions)
    for tp in partitions:
        done = await consumer.committed(tp)
        if done is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, done)
    ends = await consumer.end_offsets(partitions)
    copied: Counter = Counter()
    remaining = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=BATCH)
        sent = [await producer.send(to_prefix + sources[m.topic], key=m.key, value=m.value, timestamp_ms=m.timestamp,
                                    headers=list(m.headers or ()))
                for tp in sorted(batch, key=lambda tp: (tp.topic, tp.partition)) for m in batch[tp] if m.offset < ends[tp]]
        await asyncio.gather(*sent)
        for tp, messages in batch.items():
            copied[sources[tp.topic]] += sum(1 for m in messages if m.offset < ends[tp])
        positions = {tp: min(await consumer.position(tp), ends[tp]) for tp in remaining}
        await consumer.commit(positions)
        remaining = {tp for tp, at in positions.items() if at < ends[tp]}
    return copied
