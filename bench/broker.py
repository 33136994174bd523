"""The Kafka side of the benchmarks: the broker, producing fast, the raw ceiling, and
watching a consumer group's committed offsets."""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from xpbank.kafka.clients import broker_answers

ROOT = Path(__file__).resolve().parents[1]


def ensure_broker(bootstrap: str, explicit: bool) -> None:
    """Like the test fixtures: XPBANK_BROKER, else a broker already answering on the
    default port (another checkout's), else the project's script starts one."""
    if explicit or asyncio.run(broker_answers(bootstrap)):
        return
    subprocess.run(["bash", str(ROOT / "deploy/kafka/kafka.sh"), "up"], check=True, timeout=600)


async def produce(bootstrap: str, topic: str, records, linger_ms: int = 20, acks: int | str = 1) -> float:
    """Send (key, value, timestamp_ms) records without awaiting each; returns seconds."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=linger_ms, max_batch_size=512 * 1024,
                                max_request_size=8 * 1024 * 1024, acks=acks)
    await producer.start()
    started = time.monotonic()
    try:
        pending = []
        for key, value, ts in records:
            pending.append(await producer.send(topic, value=value, key=key, timestamp_ms=ts))
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                pending.clear()
        await producer.flush()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - started


async def raw_ceiling(bootstrap: str, topic: str, events_per_record: int) -> dict:
    """A plain group-less aiokafka consumer reading the topic from the beginning to its
    end and orjson-decoding every value."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=32 * 1024 * 1024)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or
                                                        await _partitions(consumer, topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        records = events = 0
        started = time.monotonic()
        while remaining:
            for tp, messages in (await consumer.getmany(timeout_ms=1000, max_records=10000)).items():
                for message in messages:
                    doc = orjson.loads(message.value)
                    events += len(doc["data"]) if "data" in doc else 1
                records += len(messages)
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        elapsed = time.monotonic() - started
    finally:
        await consumer.stop()
    assert events == records * events_per_record, (events, records)
    return {"records": records, "events": events, "seconds": elapsed,
            "records_per_s": records / elapsed, "events_per_s": events / elapsed}


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # noqa: SLF001 - first look at a new topic
    return consumer.partitions_for_topic(topic) or set()


@dataclass
class Progress:
    """Samples of a group's committed offsets: (monotonic time, committed, lag)."""

    total: int
    samples: list[tuple[float, int, int]] = field(default_factory=list)

    def rate(self, ready: float) -> tuple[float, float]:
        """(records/s, seconds) from `ready` (the consumer's "Worker ready": group joined,
        tables recovered) to the first sample at lag 0. The process's startup is excluded;
        the end is late by up to one commit interval (1 s) plus one sample (0.25 s)."""
        before = [s for s in self.samples if s[0] <= ready] or self.samples[:1]
        done = next(s for s in self.samples if s[2] == 0)
        seconds = max(done[0] - ready, 1e-3)
        return (done[1] - before[-1][1]) / seconds, seconds


class GroupWatch:
    """One admin client and one consumer kept open while a group works through topics."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    async def __aenter__(self) -> GroupWatch:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False)
        await self.admin.start()
        await self.consumer.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def sample(self, group: str, topics: list[str]) -> tuple[int, int]:
        """(committed, lag) summed over the topics' partitions."""
        described = await self.admin.describe_topics(topics)
        tps = [TopicPartition(t["topic"], p["partition"]) for t in described if not t["error_code"] for p in t["partitions"]]
        ends = await self.consumer.end_offsets(tps)
        starts = await self.consumer.beginning_offsets(tps)
        try:
            offsets = await self.admin.list_consumer_group_offsets(group)
        except Exception:  # the group (or __consumer_offsets) does not exist yet
            offsets = {}
        committed = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
        # from the log start: records the broker deleted are never "behind" (as xpbank's lag)
        done = sum(min(max(committed.get(tp, starts[tp]), starts[tp]), ends[tp]) for tp in tps)
        return done, sum(ends.values()) - done

    async def until_caught_up(self, group: str, topics: list[str], total: int, alive, timeout: float,
                              every: float = 0.25, on_sample=None) -> Progress:
        progress, deadline = Progress(total), time.monotonic() + timeout
        while time.monotonic() < deadline:
            committed, lag = await self.sample(group, topics)
            progress.samples.append((time.monotonic(), committed, lag))
            if on_sample:
                on_sample(committed, lag)
            if lag == 0 and committed >= total:
                return progress
            if not alive() and lag == 0:  # a replay stops by itself once caught up
                return progress
            if not alive():
                raise RuntimeError(f"group {group} consumer exited with lag {lag}")
            await asyncio.sleep(every)
        raise TimeoutError(f"group {group} still {lag} behind after {timeout:.0f}s")


async def topic_bytes(bootstrap: str, topic: str) -> tuple[int, int]:
    """(keys, bytes of key+value) of the latest value per key of a (changelog) topic."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                fetch_max_bytes=32 * 1024 * 1024)
    await consumer.start()
    latest: dict[bytes, int] = {}
    try:
        tps = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            for tp, messages in (await consumer.getmany(timeout_ms=1000, max_records=10000)).items():
                for m in messages:
                    if m.value is None:
                        latest.pop(m.key, None)
                    else:
                        latest[m.key] = len(m.key) + len(m.value)
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return len(latest), sum(latest.values())


def created_by(topic: str, prefix: str) -> bool:
    """Whether a run with this prefix created `topic`: its own names start with it, and
    so does the group in the Quix peer's internal topics, `<kind>__<consumer group>--…`
    (matched by the prefix alone, every run left them on the broker)."""
    return topic.startswith(prefix) or topic.partition("__")[2].startswith(prefix)


async def topics_held(bootstrap: str) -> int:
    """Topics on the broker besides its own (`__…`): a condition of the run, as the
    machine's load is (other runs' leftovers are kept in the broker's memory)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sum(1 for t in await admin.list_topics() if not t.startswith("__"))
    finally:
        await admin.close()


async def delete_prefix(bootstrap: str, prefix: str) -> list[str]:
    """Delete the topics this run created (`created_by`)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if created_by(t, prefix)]
        if mine:
            await admin.delete_topics(mine)
        return mine
    finally:
        await admin.close()
