"""The event log is the store (issue 9): records whose times lie weeks back flow through
a broker that deletes by time every few seconds, and a replay afterwards still has the
whole history."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.conftest import Broker, drop_redis_keys, make_env, xpbank
from tests.e2e.harness import (
    Worker, current, dead_letters, expected, produce, simulated_dead_letters, topic_values, wait_caught_up,
)
from tests.e2e.test_failures import assert_matches_simulate
from tests.e2e.test_parity_and_replay import classroom_log
from xpbank.config import Settings
from xpbank.kafka.admin import Admin
from xpbank.cli.records import read_lines
from xpbank.contract.topics import TopicSetup

pytestmark = pytest.mark.e2e
MAX_CHECK_MS, MAX_RETENTION_MS = 10_000, 3_600_000


@pytest.fixture(scope="module")
def deleting_broker(broker, tmp_path_factory):
    """A broker whose default retention is at most an hour,
    enforced every few seconds: the shared one when the project's script started it with
    its defaults, else one of our own."""
    configs = asyncio.run(Admin(Settings.from_env({"XPBANK_BROKER": broker})).broker_configs())
    check, retention = int(configs["log.retention.check.interval.ms"]), int(configs["log.retention.ms"])
    if check <= MAX_CHECK_MS and 0 < retention <= MAX_RETENTION_MS:
        yield broker
        return
    own = Broker(tmp_path_factory.mktemp("deleting-kafka"), 19392, XPBANK_KAFKA_RETENTION_MS=str(MAX_RETENTION_MS),
                 XPBANK_KAFKA_RETENTION_CHECK_MS="2000").up()
    try:
        yield own.url
    finally:
        own.run("down", "--purge")


async def produce_as_is(settings: Settings, topic: str, lines: list[dict]) -> None:
    """Record lines into a topic outside the registry (the CLI's produce takes only registry topics)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for record in read_lines(orjson.dumps(line) for line in lines):
            await producer.send(topic, value=record.value, key=record.key, timestamp_ms=int(record.timestamp.timestamp() * 1000))
        await producer.flush()
    finally:
        await producer.stop()


async def log_starts(settings: Settings, topics: list[str]) -> dict:
    admin = Admin(settings)
    return await admin.offsets(await admin.partitions(topics), earliest=True)


def retention_check_passed(settings: Settings, control: str, old_lines: list[dict], checks: int = 2) -> None:
    """Wait until the broker has run `checks` retention checks that deleted old records
    of the control topic (a topic with the broker's default retention): the witness that
    old records of any topic relying on that default would be gone too."""
    for _ in range(checks):
        asyncio.run(produce_as_is(settings, control, old_lines))
        end = asyncio.run(log_ends(settings, control))
        deadline = time.monotonic() + 60
        while asyncio.run(log_starts(settings, [control]))[(control, 0)] < end:
            assert time.monotonic() < deadline, "the broker did not delete records older than its retention"
            time.sleep(0.5)


async def log_ends(settings: Settings, topic: str) -> int:
    admin = Admin(settings)
    return (await admin.offsets([(topic, 0)], earliest=False))[(topic, 0)]


def test_events_40_days_old_flow_and_replay_through_a_broker_that_deletes_by_time(deleting_broker, redis_url, tmp_path):
    env, tag = make_env(deleting_broker, redis_url, tmp_path)
    settings = Settings.from_env(env)
    lines = classroom_log(learners=8, seed=41, start=datetime.now(UTC).replace(microsecond=0) - timedelta(days=40))
    want, _, sim_outputs = expected(lines, settings)
    assert xpbank(env, "topics", "create").returncode == 0
    control = settings.topic_prefix + "control"
    asyncio.run(Admin(settings).create([TopicSetup(control, 1, 1, (("cleanup.policy", "delete"),), "output")]))
    produce(env, lines)
    retention_check_passed(settings, control, lines[:20])
    inputs = [settings.topic_prefix + t for t in ("learning.caliper.v1", "learning.submissions.v1")]
    assert set(asyncio.run(log_starts(settings, inputs)).values()) == {0}

    worker = Worker(env, "w", tmp_path).start()
    try:
        wait_caught_up(settings)
        retention_check_passed(settings, control, lines[:20])  # the outputs carry their causes' old timestamps
        assert_matches_simulate(settings, lines)
        assert dead_letters(settings) == simulated_dead_letters(sim_outputs) != []
    finally:
        worker.stop()

    replay = xpbank(env | {"XPBANK_DATA_DIR": str(tmp_path / "replay")}, "replay", "--generation", "2", timeout=300)
    assert replay.returncode == 0, replay.stderr.decode()[-2000:]
    replayed = current(topic_values(settings, "xp.facts.v1"))
    assert {f["generation"] for f in replayed.values()} == {2}
    assert {fid: f["xp"] for fid, f in replayed.items()} == {fid: f["xp"] for fid, f in want.items()}
    drop_redis_keys(redis_url, tag)
