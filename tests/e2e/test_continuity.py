"""Records the consumer never delivers are still processed, once and in order.

faust-streaming can commit past records that never reached the agent (a record fetched
before a rebalance delivered after the seek-back; see xpbank.continuity). The same hole
is made here on purpose, deterministically: the worker's consumer group is committed
halfway into every learner partition before the worker first starts, so Faust begins
mid-partition and never delivers the first half."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from tests.conftest import xpbank
from tests.e2e.harness import Worker, produce, wait_caught_up
from tests.e2e.test_failures import assert_matches_simulate
from tests.e2e.test_parity_and_replay import classroom_log
from xpbank.groups import app_id
from xpbank.continuity import GapReader
from xpbank.topics import CALIPER, MASTERY, SUBMISSIONS

pytestmark = pytest.mark.e2e


async def commit_halfway(settings, topics: list[str]) -> int:
    """Commit the worker's group at half of every partition's end; returns the records skipped."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=app_id(settings),
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(settings.partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        offsets = {tp: OffsetAndMetadata(ends[tp] // 2, "") for tp in tps}
        await consumer.commit(offsets)
        return sum(o.offset for o in offsets.values())
    finally:
        await consumer.stop()


def test_records_committed_but_never_delivered_are_read_directly(env, settings, tmp_path):
    lines = classroom_log(learners=12, seed=5)
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, lines)
    skipped = asyncio.run(commit_halfway(settings, [settings.topic_prefix + t for t in (CALIPER, SUBMISSIONS, MASTERY)]))
    assert skipped > 100
    worker = Worker(env, "w", tmp_path).start()
    try:
        wait_caught_up(settings)
        assert_matches_simulate(settings, lines)
        assert "records never delivered, read directly" in worker.log()
    finally:
        worker.stop()


async def partition_ends(settings, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(settings.partitions)])
        return {tp.partition: end for tp, end in ends.items()}
    finally:
        await consumer.stop()


def test_gap_reader_reads_exactly_the_asked_range(env, settings):
    lines = classroom_log(learners=3, seed=2)
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, lines)
    topic = settings.topic_prefix + CALIPER
    per_partition = asyncio.run(partition_ends(settings, topic))
    busiest = max(per_partition, key=per_partition.get)
    ends = per_partition[busiest]
    assert ends >= 10

    async def read() -> tuple[list[int], list[int], list[int], int]:
        reader = GapReader(settings)
        try:
            middle = [r.offset for r in await reader.read(topic, busiest, 3, 9)]
            whole = [r.offset for r in await reader.read(topic, busiest, 0, 5)]
            beyond = [r.offset for r in await reader.read(topic, busiest, ends - 2, ends + 10)]
            return middle, whole, beyond, await reader.log_start(topic, busiest)
        finally:
            await reader.stop()

    middle, whole, beyond, start = asyncio.run(read())
    assert middle == list(range(3, 9))
    assert whole == list(range(0, 5))
    assert beyond == [ends - 2, ends - 1]  # the partition ends first: no wait for records to come
    assert start == 0
