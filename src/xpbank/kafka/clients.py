"""The Kafka edge for the command line: producing record lines and reading topics back
(topic administration is `kafka_admin`). Clients are opened per call, never at import
time."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from xpbank.config import Settings
from xpbank.contract.records import InputRecord
from xpbank.kafka.connection import aiokafka_options
from xpbank.kafka.admin import Admin, KafkaUnavailable, TopicSetupError


async def broker_answers(bootstrap: str) -> bool:
    """A Kafka broker answers a metadata request at `bootstrap` within a few seconds."""
    admin = Admin(Settings.from_env({"XPBANK_BROKER": f"kafka://{bootstrap}"}), timeout=5)
    try:
        await admin.metadata()
        return True
    except KafkaUnavailable:
        return False


def progress(done: int, total: int | None, started: float, what: str) -> None:
    rate = done / max(time.monotonic() - started, 1e-9)
    of = f"/{total}" if total else ""
    print(f"\r{what}: {done}{of} records ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)


CHUNK = 5000  # lines read and checked before any of them is sent


async def produce(settings: Settings, records: Iterable[InputRecord], show_progress: bool = False) -> int:
    """Publish record lines, a chunk at a time: a chunk is read (and so checked) whole
    before it is sent, and every topic it names must exist, so a bad line or a missing
    topic stops the command before that chunk rather than half-way through it."""
    admin, known = Admin(settings), set()
    producer = AIOKafkaProducer(**aiokafka_options(settings), enable_idempotence=True, acks="all", linger_ms=5)
    await producer.start()
    count, started = 0, time.monotonic()
    try:
        for chunk in _chunks(records, CHUNK):
            names = {settings.topic_prefix + record.topic for record in chunk} - known
            if names:
                present = {topic for topic, _ in await admin.partitions(names)}
                if names - present:
                    raise TopicSetupError(f"topic {sorted(names - present)[0]} does not exist on {settings.broker} "
                                          f"(xpbank topics create makes every topic); {count} records produced before")
                known |= present
            pending = [
                await producer.send(settings.topic_prefix + record.topic, value=record.value, key=record.key,
                                    timestamp_ms=int(record.timestamp.timestamp() * 1000) if record.timestamp else None)
                for record in chunk
            ]
            await asyncio.gather(*pending)
            count += len(chunk)
            if show_progress and count >= CHUNK:
                progress(count, None, started, "produced")
        if show_progress and count >= CHUNK:
            print(file=sys.stderr)
    finally:
        await producer.stop()
    return count


def _chunks(records: Iterable[InputRecord], size: int) -> Iterable[list[InputRecord]]:
    chunk: list[InputRecord] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def partitions_of(settings: Settings, full_name: str) -> list[int]:
    found = await Admin(settings).partitions([full_name])
    if not found:
        raise KafkaUnavailable(f"topic {full_name!r} does not exist on {settings.broker}")
    return [p for _, p in found]


async def read_topic(settings: Settings, full_name: str, idle_ms: int = 1500) -> AsyncIterator:
    """Every record of a topic from the beginning up to its current end."""
    consumer = AIOKafkaConsumer(**aiokafka_options(settings), enable_auto_commit=False, group_id=None,
                                isolation_level="read_committed")  # an aborted transaction never happened
    await consumer.start()
    try:
        partitions = await partitions_of(settings, full_name)
        assigned = [TopicPartition(full_name, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        remaining = {tp for tp in assigned if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(timeout_ms=idle_ms)
            for tp, messages in batch.items():
                for message in messages:
                    yield message
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
