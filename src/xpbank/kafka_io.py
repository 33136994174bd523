"""The Kafka edge for the command line: topic creation, producing record lines, and
reading topics back. Clients are opened per call, never at import time."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from xpbank.config import Settings
from xpbank.handlers import InputRecord
from xpbank.topics import TOPICS


async def broker_answers(bootstrap: str) -> bool:
    """A Kafka broker answers a metadata request at `bootstrap` within a few seconds."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await asyncio.wait_for(admin.start(), 5)
        await asyncio.wait_for(admin.list_topics(), 5)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return False
    finally:
        await admin.close()


class TopicSetupError(RuntimeError):
    """The broker refused to create a topic, or created it unlike its peers."""


async def create_topics(settings: Settings, extra: Iterable[tuple[str, str]] = ()) -> list[str]:
    """Create every registry topic (and `extra` (name, cleanup) pairs); idempotent.
    Returns the names that were created now."""
    wanted = [(spec.full_name(settings.topic_prefix), spec.cleanup) for spec in TOPICS] + list(extra)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=settings.partitions, replication_factor=settings.replication_factor, topic_configs={"cleanup.policy": cleanup})
            for name, cleanup in wanted
            if name not in existing
        ]
        created = []
        for topic in missing:  # one at a time: a racing creator only costs that one
            try:
                response = await admin.create_topics([topic])
            except TopicAlreadyExistsError:
                continue
            for name, code, message in (tuple(e)[:3] for e in response.topic_errors):
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise TopicSetupError(f"cannot create topic {name}: {message or for_code(code).__name__}")
            created.append(topic.name)
        await _until_visible(admin, [name for name, _ in wanted], settings.partitions)
        return created
    finally:
        await admin.close()


async def _until_visible(admin: AIOKafkaAdminClient, names: list[str], partitions: int, timeout: float = 30) -> None:
    """Creation returns before every broker's metadata has the topics; wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        described = await admin.describe_topics(names)
        short = [f"{t['topic']} has {len(t['partitions'])}" for t in described if not t["error_code"] and 0 < len(t["partitions"]) < partitions]
        if short:  # created elsewhere (broker auto-creation?) with fewer partitions than its co-partitioned peers
            raise TopicSetupError(f"topics with fewer than {partitions} partitions: {', '.join(short)}; delete them or raise XPBANK_PARTITIONS")
        if all(not t["error_code"] and len(t["partitions"]) >= partitions for t in described):
            return
        if time.monotonic() > deadline:
            missing = [t["topic"] for t in described if t["error_code"] or not t["partitions"]]
            raise TopicSetupError(f"topics not visible after {timeout:.0f}s: {missing}")
        await asyncio.sleep(0.2)


def progress(done: int, total: int | None, started: float, what: str) -> None:
    rate = done / max(time.monotonic() - started, 1e-9)
    of = f"/{total}" if total else ""
    print(f"\r{what}: {done}{of} records ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)


async def produce(settings: Settings, records: Iterable[InputRecord], show_progress: bool = False) -> int:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, enable_idempotence=True, acks="all", linger_ms=5
    )
    await producer.start()
    count, started = 0, time.monotonic()
    try:
        pending = []
        for record in records:
            ts_ms = int(record.timestamp.timestamp() * 1000) if record.timestamp else None
            pending.append(
                await producer.send(
                    settings.topic_prefix + record.topic, value=record.value, key=record.key, timestamp_ms=ts_ms
                )
            )
            count += 1
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
                if show_progress:
                    progress(count, None, started, "produced")
        await asyncio.gather(*pending)
        if show_progress and count >= 5000:
            progress(count, None, started, "produced")
            print(file=sys.stderr)
    finally:
        await producer.stop()
    return count


async def partitions_of(settings: Settings, full_name: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        [described] = await admin.describe_topics([full_name])
    finally:
        await admin.close()
    if described["error_code"] or not described["partitions"]:
        raise SystemExit(f"topic {full_name!r} does not exist on {settings.broker}")
    return sorted(p["partition"] for p in described["partitions"])


async def read_topic(settings: Settings, full_name: str, idle_ms: int = 1500) -> AsyncIterator:
    """Every record of a topic from the beginning up to its current end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False, group_id=None
    )
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


async def _committed_offsets(admin: AIOKafkaAdminClient, group: str, timeout_s: float = 60.0) -> dict:
    # A fresh broker creates __consumer_offsets lazily: until it is loaded the coordinator
    # lookup fails with a retriable error, which is "not yet", not "broken".
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await admin.list_consumer_group_offsets(group)
        except KafkaError as error:
            if not error.retriable or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def committed_offsets(settings: Settings, group: str) -> dict:
    """The group's committed offsets (next to read), per (topic, partition)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        return {(tp.topic, tp.partition): meta.offset for tp, meta in (await _committed_offsets(admin, group)).items()
                if meta.offset >= 0}
    finally:
        await admin.close()


async def group_lag(settings: Settings, group: str, topics: Iterable[str]) -> dict[str, int]:
    """Records of `topics` not yet committed by consumer group `group`, per topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        described = await admin.describe_topics(list(topics))
        tps = [TopicPartition(t["topic"], p["partition"]) for t in described if not t["error_code"] for p in t["partitions"]]
        ends = await consumer.end_offsets(tps) if tps else {}
        committed = await _committed_offsets(admin, group)
        lag: dict[str, int] = {}
        for tp in tps:
            done = committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, ends[tp] - done)
        return lag
    finally:
        await consumer.stop()
        await admin.close()

