"""Records the consumer never delivers are still processed, once and in order.

faust-streaming can commit past records that never reached the agent (a record fetched
before a rebalance delivered after the seek-back; see xpbank.runtime.faust.continuity). The same hole
is made here on purpose, deterministically: the worker's consumer group is committed
halfway into every learner partition before the worker first starts, so Faust begins
mid-partition and never delivers the first half."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from confluent_kafka import TopicPartition as ConfluentTopicPartition

from tests.builders import heartbeat
from tests.conftest import xpbank
from tests.e2e.harness import Worker, eventually, get_or_none, metrics, produce, topic_values, wait_caught_up
from tests.e2e.test_failures import assert_matches_simulate
from tests.e2e.test_parity_and_replay import classroom_log
from xpbank.runtime.topology import app_id
from xpbank.kafka.admin import Admin
from xpbank.runtime.faust.continuity import GapReader
from xpbank.contract.topics import CALIPER, MASTERY, SUBMISSIONS

pytestmark = pytest.mark.e2e


async def commit_at(settings, topics: list[str], where) -> int:
    """Commit the worker's group at `where(end)` of every partition; returns the sum of the
    committed offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=app_id(settings),
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(settings.partitions)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        offsets = {tp: OffsetAndMetadata(where(ends[tp]), "") for tp in tps}
        await consumer.commit(offsets)
        return sum(o.offset for o in offsets.values())
    finally:
        await consumer.stop()


async def commit_halfway(settings, topics: list[str]) -> int:
    """Commit the worker's group at half of every partition's end; returns the records skipped."""
    return await commit_at(settings, topics, lambda end: end // 2)


def learner_topics(settings) -> list[str]:
    return [settings.topic_prefix + t for t in (CALIPER, SUBMISSIONS, MASTERY)]


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
        assert metrics(worker)["xpbank_refetched_records_total"] >= skipped
    finally:
        worker.stop()


def test_partitions_committed_to_their_end_but_never_processed_are_read_again_by_the_watchdog(env, settings, tmp_path):
    """No record ever arrives past such a hole, so only the watchdog can notice it: two
    checks without progress send the consumer back to the log start."""
    lines = classroom_log(learners=6, seed=8)
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, lines)
    assert asyncio.run(commit_at(settings, learner_topics(settings), lambda end: end)) > 100
    worker = Worker(env, "w", tmp_path).start()
    try:
        eventually(lambda: assert_matches_simulate(settings, lines), timeout=120, every=2)
        assert "partition made no progress, reading it again" in worker.log()
        assert metrics(worker)["xpbank_stall_restarts_total"] >= 1
    finally:
        worker.stop()


def test_records_delivered_again_are_skipped_by_the_ledger(env, settings, tmp_path):
    """The group's commits are put back to offset 0 while the worker is away: everything
    is delivered again, and nothing is decided or published twice."""
    lines = classroom_log(learners=6, seed=9)
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, lines)
    worker = Worker(env, "w", tmp_path).start()
    try:
        wait_caught_up(settings)
    finally:
        worker.stop()
    outputs = [settings.topic_prefix + t for t in ("xp.facts.v1", "xp.banked.v1", "xp.attempts.v1")]
    published = asyncio.run(ends(settings, outputs))
    letters = origins(topic_values(settings, "xp.dead-letters.v1"))
    until_group_empty(settings)
    asyncio.run(commit_at(settings, learner_topics(settings), lambda end: 0))
    again = Worker(env, "w", tmp_path).start()
    try:
        wait_caught_up(settings)
        assert asyncio.run(ends(settings, outputs)) == published  # nothing decided or published twice
        ledgered = sum(1 for line in lines if line["topic"] != "learning.caliper.v1")  # heartbeats: every 100th
        assert metrics(again)["xpbank_redelivered_records_total"] >= ledgered
        # heartbeats since the ledger's last table copy are read again: their dead letters
        # may be published again, the same letters of the same records
        assert origins(topic_values(settings, "xp.dead-letters.v1")) == letters
        assert_matches_simulate(settings, lines)
    finally:
        again.stop()


def origins(letters: list[dict]) -> set[tuple]:
    return {(d["reason"], d["topic"], d["partition"], d["offset"], d["eventId"]) for d in letters}


async def ends(settings, topics: list[str]) -> dict:
    admin = Admin(settings)
    return await admin.offsets(await admin.partitions(topics), earliest=False)


def until_group_empty(settings, timeout: float = 60) -> None:
    """A stopped static member stays in the group until its session times out; only an
    empty group accepts commits from outside."""
    deadline = time.monotonic() + timeout
    while asyncio.run(Admin(settings).members(app_id(settings))):
        assert time.monotonic() < deadline, "the worker group did not empty"
        time.sleep(1)


async def partition_ends(settings, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(settings.partitions)])
        return {tp.partition: end for tp, end in ends.items()}
    finally:
        await consumer.stop()


def test_gap_reader_reads_what_is_left_of_a_range_the_broker_deleted(env, settings):
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, [heartbeat("u1", "v1", 30, t) for t in range(10)])
    topic = settings.topic_prefix + CALIPER
    [(partition, end)] = [(p, e) for p, e in asyncio.run(partition_ends(settings, topic)).items() if e]
    admin = Admin(settings)
    [future] = admin.client.delete_records([ConfluentTopicPartition(topic, partition, 6)]).values()
    future.result(30)

    async def read() -> tuple[list[int], int]:
        reader = GapReader(settings)
        try:
            return [r.offset for r in await reader.read(topic, partition, 2, end)], await reader.log_start(topic, partition)
        finally:
            await reader.stop()

    assert asyncio.run(read()) == (list(range(6, 10)), 6)


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


def test_a_partition_that_sending_back_does_not_resume_is_taken_over(env, settings, tmp_path):
    """faust-streaming can leave a partition unfetched for good, and sending it back then
    changes nothing. The failpoint makes that happen to caliper partition 0: after three
    kicks the watchdog reads its records directly and commits them with Faust's own commit."""
    lines = classroom_log(learners=12, seed=9)
    assert xpbank(env, "topics", "create").returncode == 0
    worker = Worker(env | {"XPBANK_FAILPOINT": "stall-partition:0"}, "w", tmp_path).start()
    try:
        half = len(lines) // 2
        produce(env, lines[:half])

        def caliper_read() -> None:
            assert get_or_none(worker, "/healthz") == 200
            assert metrics(worker).get(f'xpbank_records_in_total{{topic="{CALIPER}"}}', 0) > 0
        eventually(caliper_read, timeout=60, every=0.5)
        produce(env, lines[half:])  # caliper partition 0 is not fetched any more
        wait_caught_up(settings, timeout=120)
        assert_matches_simulate(settings, lines)
        assert metrics(worker)["xpbank_stall_take_overs_total"] >= 1
        assert "reading it again did not help" in worker.log()
    finally:
        worker.stop()
