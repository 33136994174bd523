"""What each topic keeps, on the real broker (issue 9): `topics create` converges,
`topics check` reports, a worker refuses inputs that delete records, lag counts from the
log start, and a replay refuses a history that no longer starts at offset 0."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as AioTopicPartition
from aiokafka.structs import OffsetAndMetadata
from confluent_kafka import TopicPartition

from tests.builders import course, heartbeat, resource
from tests.conftest import ROOT, xpbank
from tests.e2e.harness import free_port, produce
from xpbank.runtime.topology import app_id
from xpbank.kafka.admin import Admin, group_lag

pytestmark = pytest.mark.integration


def configs(settings, *names: str) -> dict[str, dict[str, str]]:
    found = asyncio.run(Admin(settings).describe([settings.topic_prefix + n for n in names]))
    return {name[len(settings.topic_prefix):]: d.configs for name, d in found.items()}


def alter(settings, changes: dict[str, dict[str, str]]) -> None:
    asyncio.run(Admin(settings).alter({settings.topic_prefix + n: c for n, c in changes.items()}))


def test_create_gives_every_topic_its_retention_and_converges_what_drifted(env, settings):
    assert xpbank(env | {"XPBANK_OUTPUT_RETENTION_DAYS": "7"}, "topics", "create").returncode == 0
    held = configs(settings, "learning.caliper.v1", "learning.mastery.v1", "xp.banked.v1", "xp.facts.v1")
    assert (held["learning.caliper.v1"]["retention.ms"], held["learning.caliper.v1"]["retention.bytes"]) == ("-1", "-1")
    assert held["learning.mastery.v1"]["retention.ms"] == "-1"
    assert held["xp.banked.v1"]["retention.ms"] == str(7 * 86_400_000)
    assert held["xp.facts.v1"]["cleanup.policy"] == "compact"

    alter(settings, {"learning.caliper.v1": {"retention.ms": "3600000"}, "xp.facts.v1": {"cleanup.policy": "compact,delete"}})
    checked = xpbank(env | {"XPBANK_OUTPUT_RETENTION_DAYS": "7"}, "topics", "check")
    assert checked.returncode == 1
    rows = {tuple(line.split()) for line in checked.stdout.decode().splitlines()[1:]}
    assert rows == {(settings.topic_prefix + "learning.caliper.v1", "retention.ms", "-1", "3600000"),
                    (settings.topic_prefix + "xp.facts.v1", "cleanup.policy", "compact", "compact,delete")}

    converged = xpbank(env, "topics", "create")  # back to the default output retention: for ever
    assert converged.returncode == 0, converged.stderr
    assert b"0 created, 6 altered" in converged.stdout  # caliper back; the five outputs (sink dead letters too) to -1
    assert xpbank(env, "topics", "check").returncode == 0
    assert configs(settings, "xp.banked.v1")["xp.banked.v1"]["retention.ms"] == "-1"


def test_partitions_that_differ_are_reported_never_changed(env, settings):
    assert xpbank(env, "topics", "create").returncode == 0
    more = xpbank(env | {"XPBANK_PARTITIONS": "2"}, "topics", "create")
    assert more.returncode == 1
    assert f"{settings.topic_prefix}learning.caliper.v1: partitions is 4, expected 2".encode() in more.stderr
    checked = xpbank(env | {"XPBANK_PARTITIONS": "2"}, "topics", "check")
    assert checked.returncode == 1 and b"partitions" in checked.stdout
    found = asyncio.run(Admin(settings).describe([settings.topic_prefix + "learning.caliper.v1"]))
    assert [d.partitions for d in found.values()] == [4]


def test_worker_refuses_an_input_topic_that_deletes_records_unless_allowed(env, settings, tmp_path):
    assert xpbank(env, "topics", "create").returncode == 0
    alter(settings, {"learning.submissions.v1": {"retention.ms": "86400000"}})
    started = time.monotonic()
    refused = xpbank(env, "worker", timeout=60)
    assert refused.returncode == 1 and time.monotonic() - started < 30
    stderr = refused.stderr.decode()
    assert f"{settings.topic_prefix}learning.submissions.v1: retention.ms is 86400000, expected -1" in stderr
    assert "XPBANK_ALLOW_FINITE_RETENTION=1" in stderr and "Traceback" not in stderr

    log_path = tmp_path / "allowed.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([str(ROOT / ".venv/bin/xpbank"), "worker"], stdout=log, stderr=subprocess.STDOUT,
                                  env=env | {"XPBANK_ALLOW_FINITE_RETENTION": "1", "XPBANK_WEB_PORT": str(free_port()),
                                             "XPBANK_PROJECTOR": "0"})
    try:
        deadline = time.monotonic() + 60
        while "worker ready" not in log_path.read_text() and time.monotonic() < deadline:
            assert worker.poll() is None, log_path.read_text()[-2000:]
            time.sleep(0.5)
        text = log_path.read_text()
        assert "worker ready" in text
        assert "input topic deletes records (XPBANK_ALLOW_FINITE_RETENTION=1)" in text
        assert "learning.submissions.v1: retention.ms is 86400000" in text
    finally:
        worker.terminate()
        worker.wait(30)


def delete_before(settings, topic: str, partition: int, offset: int) -> None:
    admin = Admin(settings)
    [future] = admin.client.delete_records([TopicPartition(settings.topic_prefix + topic, partition, offset)]).values()
    future.result(30)


def busiest_partition(settings, topic: str) -> tuple[int, int]:
    async def ends():
        admin = Admin(settings)
        return await admin.offsets(await admin.partitions([settings.topic_prefix + topic]), earliest=False)
    (_, partition), end = max(asyncio.run(ends()).items(), key=lambda item: item[1])
    return partition, end


def test_lag_counts_from_the_log_start(env, settings):
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, [heartbeat("u1", "v1", 30, t) for t in range(10)])
    caliper = settings.topic_prefix + "learning.caliper.v1"
    partition, end = busiest_partition(settings, "learning.caliper.v1")
    assert end == 10  # one learner: one partition
    assert asyncio.run(group_lag(settings, "never-joined", [caliper])) == {caliper: 10}
    delete_before(settings, "learning.caliper.v1", partition, 4)
    assert asyncio.run(group_lag(settings, "never-joined", [caliper])) == {caliper: 6}
    delete_before(settings, "learning.caliper.v1", partition, 10)  # all deleted: nothing can be behind
    assert asyncio.run(group_lag(settings, "never-joined", [caliper])) == {caliper: 0}


async def commit(settings, group: str, topic: str, partition: int, offset: int) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = AioTopicPartition(settings.topic_prefix + topic, partition)
        consumer.assign([tp])
        await consumer.commit({tp: OffsetAndMetadata(offset, "")})
    finally:
        await consumer.stop()


def test_replay_refuses_a_history_that_no_longer_starts_at_offset_0(env, settings, tmp_path):
    lines = [course("c1", [[resource("v1", 1, "Video", 5), resource("ex1", 2, "Exercise", 2)]])]
    lines += [heartbeat("u1", "v1", 30, t * 40) for t in range(8)]
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, lines)
    partition, _ = busiest_partition(settings, "learning.caliper.v1")
    delete_before(settings, "learning.caliper.v1", partition, 3)
    asyncio.run(commit(settings, app_id(settings), "learning.caliper.v1", partition, 8))  # generation 1 had read it all
    replay_env = env | {"XPBANK_DATA_DIR": str(tmp_path / "replay")}
    refused = xpbank(replay_env, "replay", "--generation", "2")
    assert refused.returncode == 1
    stderr = refused.stderr.decode()
    assert (f"{settings.topic_prefix}learning.caliper.v1:{partition} starts at offset 3 (3 records gone; "
            "generation before had consumed to offset 8)") in stderr
    assert "--accept-truncated-history" in stderr and "Traceback" not in stderr
    assert asyncio.run(Admin(settings).committed(app_id(settings).replace("-g1", "-g2"))) == {}  # nothing ran

    accepted = xpbank(replay_env, "replay", "--generation", "2", "--accept-truncated-history", timeout=180)
    assert accepted.returncode == 0, accepted.stderr.decode()[-2000:]
    assert b"caught up" in accepted.stderr  # the stop condition counts from the log start: it ends
