"""The read models on a Redis Cluster (make redis-up-cluster: three masters with a replica
each) while a classroom streams in: a master killed -9 (its replica takes over; `up`
brings it back as a replica), a shard emptied by FLUSHALL, and a shard failed over to a
replica that missed writes (stopped earlier with its data, promoted after its master was
killed). Readers never see a total below one shown before, and are answered 503 with the
reason meanwhile; afterwards every learner's total is the sum of the facts, on the API
and on the page, and `xpbank projections rebuild` works on the cluster too."""

from __future__ import annotations

import time

import pytest
import redis

from tests.conftest import make_env, xpbank
from tests.clusters import drop_cluster_keys
from tests.e2e.harness import ProjectorProcess, Stream, Worker, eventually, metrics, produce, wait_caught_up
from tests.e2e.test_failures import chunks
from tests.e2e.test_outages import Totals, alive, overview
from tests.e2e.test_parity_and_replay import classroom_log
from tests.e2e.test_read_models_api import served, sums_of_current_facts, wait_projected
from xpbank.config import Settings
from xpbank.read.projection import key_slot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def roles(nodes, wanted: dict[int, str]) -> None:
    assert {n: nodes.role(n) for n in wanted} == wanted


def down(nodes, node: int) -> None:
    assert nodes.pid(node) is None, f"node {node} still runs"


def master_of(nodes, client, key: str) -> int:
    """The node (1-6) serving `key`'s slot now."""
    port = client.get_node_from_key(key).port
    return next(n for n, p in nodes.ports.items() if p == port)


def test_read_models_on_a_redis_cluster_lose_nothing_when_a_shard_fails_over_is_emptied_or_misses_writes(
        broker, redis_cluster, tmp_path):
    nodes = redis_cluster.up()
    env, tag = make_env(broker, nodes.url, tmp_path)
    env |= {"XPBANK_PROJECTOR": "0"}
    settings = Settings.from_env(env)
    prefix = env["XPBANK_REDIS_PREFIX"]
    lines = classroom_log(learners=12, seed=41)
    parts = chunks(lines, 5)
    learners = sorted({line["key"].removeprefix("device-of-") for line in lines if "learner-" in (line["key"] or "")})
    worker, projector, api = (Worker(env, "w", tmp_path), ProjectorProcess(env, "projector", tmp_path),
                              Worker(env, "api", tmp_path, "api"))

    def right() -> None:
        wait_caught_up(settings)
        wait_projected(settings)
        totals = sums_of_current_facts(settings)
        assert served(api, totals) == totals

    try:
        assert xpbank(env, "topics", "create").returncode == 0
        produce(env, parts[0])
        for process in (worker, projector, api):
            process.start()
        eventually(right, timeout=180)
        with nodes.client() as client:
            keys = [key.decode() for key in client.scan_iter(match=f"{prefix}*", count=1000)]
            slots = {learner: {key_slot(k) for k in keys if f"{{{learner}}}" in k} for learner in learners}
            assert {len(s) for s in slots.values() if s} == {1}  # every key of a learner in one slot
            assert len({master_of(nodes, client, k) for k in keys}) == 3  # spread over the three shards
            busy = master_of(nodes, client, f"{prefix}xp:{{{learners[0]}}}")
        with Totals(api, learners) as watched:
            # 1. a master killed -9 mid-stream: its replica takes over, `up` brings it back as a replica
            replica = nodes.replica_of(busy)
            stream = Stream(settings, parts[1], batch=10, pause=0.1).start()
            time.sleep(1)
            nodes.kill9(busy)
            eventually(lambda: roles(nodes, {replica: "master"}), timeout=30)
            stream.join()
            nodes.up()
            eventually(lambda: roles(nodes, {busy: "slave"}), timeout=30)
            eventually(right, timeout=120)

            # 2. a shard emptied (FLUSHALL on its master, copied by its replica) under load: not the one
            # holding `meta`, so only that shard's slots lose their read models
            with nodes.client() as client:
                emptied = next(n for n in nodes.masters() if n != master_of(nodes, client, f"{prefix}meta"))
            stream = Stream(settings, parts[2], batch=10, pause=0.1).start()
            time.sleep(1)
            with nodes.node(emptied) as client:
                assert client.dbsize() > 0
                client.flushall()
            stream.join()
            eventually(right, timeout=120)
            assert metrics(projector)["xpbank_read_models_rebuilds_total"] >= 1

            # 3. a failover to a replica that missed writes: stopped with its data saved, more projected,
            # then its master killed: it comes back from its older data and is promoted
            master = nodes.masters()[0]
            behind = nodes.replica_of(master)
            with nodes.node(behind) as client:
                try:
                    client.shutdown(save=True)
                except redis.ConnectionError:
                    pass  # it closes the connection as it goes
            eventually(lambda: down(nodes, behind), timeout=15, every=0.1)  # (its connection closes first)
            produce(env, parts[3])
            wait_caught_up(settings)
            wait_projected(settings)
            nodes.kill9(master)
            nodes.up()  # the replica first (from its snapshot), then the master once the replica took over
            eventually(lambda: roles(nodes, {behind: "master", master: "slave"}), timeout=30)
            produce(env, parts[4])
            eventually(right, timeout=120)
            assert metrics(projector)["xpbank_read_models_losses_total"] >= 1  # the loss was seen, and rebuilt
        assert watched.wrong() == []
        assert any("read models" in detail for detail in watched.refusals())
        assert overview(api)["readModels"] == {"ok": True, "state": "ready"}  # the page
        alive(worker, projector, api)

        rebuilt = xpbank(env, "projections", "rebuild")
        assert rebuilt.returncode == 0, rebuilt.stderr.decode()[-2000:]
        assert b"deleted 0 keys" not in rebuilt.stderr
        eventually(right, timeout=60)
    finally:
        for process in (worker, projector, api):
            process.stop()
        drop_cluster_keys(nodes, prefix)
    assert "Traceback" not in projector.log() + api.log()
