"""Three brokers (make kafka-up-cluster: replication factor 3, min.insync.replicas 2), a
worker and a gateway (acks=all) while a classroom streams in through the gateway, and a
broker lost mid-stream: the one leading the busiest partitions killed -9 and started again
later, or all three restarted one after the other. Afterwards the facts equal `simulate`'s,
every event the gateway accepted (200) is on its topic, and what it could not get
acknowledged was answered 503 (the sender sent it again, as a Caliper sensor does)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tests.conftest import both_engines, make_env, xpbank
from tests.e2e.harness import Worker, eventually, wait_caught_up
from tests.e2e.test_failures import assert_matches_simulate
from tests.e2e.test_gateway_flow import requests_of
from tests.gateway_proc import Gateway, records
from xpbank.cli.classroom import classroom
from xpbank.config import Settings
from xpbank.contract.topics import TOPICS
from xpbank.kafka.admin import Admin

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ACK_TIMEOUT = "3"  # seconds: shorter than the ~9 s the controller takes to fence a killed broker


class Sender:
    """Posts the classroom's requests in order, one every `pause` seconds (slow enough to
    outlast the faults; `hurry` sends the rest at once); a 503 is sent again (after a short
    wait) until it is answered 200, as a sensor does. Remembers every status and the ids of
    the events of every request answered 200."""

    def __init__(self, gateway: Gateway, requests: list, pause: float) -> None:
        self.gateway, self.requests, self.pause = gateway, requests, pause
        self.statuses: Counter = Counter()
        self.accepted: set[str] = set()
        self.sent = 0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            for method, path, body, _ in self.requests:
                status = self._until_answered(method, path, body)
                if status == 200 and not path.startswith("/v1/courses/"):  # (a course carries no event id)
                    events = body["data"] if path.startswith("/caliper") else body
                    self.accepted.update(e["id"] for e in events if isinstance(e, dict) and "id" in e)
                self.sent += 1
                time.sleep(self.pause)
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.error = exc

    def _until_answered(self, method: str, path: str, body) -> int:
        deadline = time.monotonic() + 120
        while True:
            status = self.gateway.post(path, body, method=method)[0]
            self.statuses[status] += 1
            if status != 503 or time.monotonic() > deadline:
                return status
            time.sleep(0.5)

    def start(self) -> Sender:
        self.thread.start()
        return self

    def hurry(self) -> None:
        self.pause = 0

    def until_sent(self, share: float, timeout: float = 120) -> None:
        eventually(lambda: self._at_least(share), timeout=timeout, every=0.2)

    def _at_least(self, share: float) -> None:
        assert self.error is None, self.error
        assert self.sent >= share * len(self.requests), (self.sent, len(self.requests))

    def join(self, timeout: float = 300) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive() and self.error is None, self.error


def a_classroom(learners: int, seed: int) -> tuple[list, list[dict]]:
    """The classroom as gateway requests, and the record lines a direct producer would send."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)  # every sendTime before now
    requests = requests_of([a.line for a in classroom(learners=learners, seed=seed, start=start)])
    return requests, [line for *_, sent in requests for line in sent]


def busiest_leader(cluster, settings: Settings) -> tuple[int, dict[tuple[str, int], int]]:
    """The broker leading the partitions of this test's topics that hold the most records,
    and the end offsets of the partitions it leads."""
    partitions = cluster.partitions(settings.topic_prefix)
    ends = asyncio.run(Admin(settings).offsets(list(partitions), earliest=False))
    held = Counter()
    for tp, (leader, _, _) in partitions.items():
        held[leader] += ends[tp]
    victim = held.most_common(1)[0][0]
    return victim, {tp: ends[tp] for tp, (leader, _, _) in partitions.items() if leader == victim}


def grown(settings: Settings, before: dict[tuple[str, int], int]) -> set[str]:
    """The topics (without the prefix) of the partitions in `before` that hold more records now."""
    now = asyncio.run(Admin(settings).offsets(list(before), earliest=False))
    return {topic.removeprefix(settings.topic_prefix) for (topic, p), end in now.items() if end > before[(topic, p)]}


def on_topics(settings: Settings) -> set[str]:
    """Every event id on the caliper and submissions topics."""
    ids = {event["id"] for m in records(settings, "learning.caliper.v1") for event in orjson.loads(m.value)["data"]}
    return ids | {orjson.loads(m.value)["id"] for m in records(settings, "learning.submissions.v1")}


def check_outcome(env, settings, worker, gateway, sender, direct) -> None:
    sender.join()
    print(f"gateway answers: {dict(sender.statuses)}")
    wait_caught_up(settings, timeout=300)
    assert_matches_simulate(settings, direct)
    assert sender.accepted and sender.accepted - on_topics(settings) == set()  # no accepted event lost
    assert set(sender.statuses) <= {200, 400, 503}, sender.statuses  # 400: the classroom's broken JSON
    assert worker.alive() and gateway.process.poll() is None, worker.log()[-3000:] + gateway.log()[-3000:]


def start(env: dict, tmp_path) -> tuple[Worker, Gateway]:
    assert xpbank(env, "topics", "create").returncode == 0
    worker = Worker(env, "w", tmp_path).start()
    return worker, Gateway(env, tmp_path, XPBANK_GATEWAY_ACK_TIMEOUT_SECONDS=ACK_TIMEOUT).start()


def cluster_env(cluster, redis_url: str, tmp_path, engine: str) -> tuple[dict, Settings]:
    env, _ = make_env(cluster.settings["XPBANK_BROKER"], redis_url, tmp_path)
    env |= {"XPBANK_ENGINE": engine, "XPBANK_PROJECTOR": "0",
            "XPBANK_REPLICATION_FACTOR": cluster.settings["XPBANK_REPLICATION_FACTOR"]}
    return env, Settings.from_env(env)


@both_engines
def test_the_broker_leading_the_busiest_partitions_killed_mid_stream_loses_no_accepted_event(
        engine, whole_kafka_cluster, redis_url, tmp_path):
    cluster = whole_kafka_cluster
    env, settings = cluster_env(cluster, redis_url, tmp_path, engine)
    requests, direct = a_classroom(learners=8, seed=31)
    worker, gateway = start(env, tmp_path)
    try:
        described = asyncio.run(Admin(settings).describe([spec.full_name(settings.topic_prefix) for spec in TOPICS]))
        assert len(described) == len(TOPICS)  # `topics create` on the cluster: three replicas, two in sync for a write
        assert {(d.replication, d.configs.get("min.insync.replicas")) for d in described.values()} == {(3, "2")}
        sender = Sender(gateway, requests, pause=0.15).start()
        sender.until_sent(0.15)
        victim, led = busiest_leader(cluster, settings)
        others = {n: cluster.pid(n) for n in cluster.ports if n != victim}
        cluster.kill9(victim)
        assert sum(led.values()) > 0 and sender.sent < len(requests)  # it led records, killed mid-stream

        def leaders_moved() -> None:
            assert victim not in {leader for leader, _, _ in cluster.partitions(settings.topic_prefix).values()}
        eventually(leaders_moved, timeout=60)
        assert sender.statuses[503] > 0  # what it could not get acknowledged in time was refused
        assert sender.sent < len(requests)  # (still streaming)
        cluster.run("up")  # starts the killed broker only
        assert {n: cluster.pid(n) for n in others} == others and cluster.pid(victim)
        cluster.wait_in_sync()
        sender.hurry()
        check_outcome(env, settings, worker, gateway, sender, direct)
        assert grown(settings, led), led  # records went on through partitions it had led, after they moved
    finally:
        worker.stop()
        gateway.stop()
    assert "Traceback" not in gateway.log()


def test_a_rolling_restart_of_all_three_brokers_mid_stream_loses_no_accepted_event(
        engine, whole_kafka_cluster, redis_url, tmp_path):
    """(On the default engine: the broker's loss itself runs on both, above.)"""
    cluster = whole_kafka_cluster
    env, settings = cluster_env(cluster, redis_url, tmp_path, engine)
    requests, direct = a_classroom(learners=10, seed=37)
    worker, gateway = start(env, tmp_path)
    try:
        sender = Sender(gateway, requests, pause=0.3).start()
        sender.until_sent(0.05)
        for broker in cluster.ports:
            before = sender.sent
            cluster.run("down", str(broker))  # a controlled shutdown: leaders move first
            assert cluster.pid(broker) is None
            cluster.run("up")
            cluster.wait_in_sync()
            assert before < sender.sent < len(requests), "the stream did not go on through the restart"
        sender.hurry()
        check_outcome(env, settings, worker, gateway, sender, direct)
    finally:
        worker.stop()
        gateway.stop()
    assert "Traceback" not in gateway.log()
