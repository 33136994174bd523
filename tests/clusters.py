"""The clusters of the slow tier, each from the project's own script (their ports are
fixed: 9192-9197 for Kafka, 7101-7106 and 17101-17106 for Redis), so one session fixture
each (tests/conftest.py: `kafka_cluster`, `redis_cluster`). Tests kill their nodes; each
test starts from the cluster whole again (`up` starts what is down) and, for Kafka, with
every replica in sync."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import redis
from confluent_kafka.admin import AdminClient
from redis.cluster import ClusterNode, RedisCluster

from tests.conftest import ROOT, read_env_file, run_root


def alive(pid: int) -> bool:
    """A running process: not gone, nor a zombie (the scripts' daemons are reparented to an
    init that may reap them a while after they died, and `kill -0` still finds a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class KafkaCluster:
    """`deploy/kafka/cluster.sh` (make kafka-up-cluster): three brokers on 9192-9194."""

    script = ROOT / "deploy/kafka/cluster.sh"
    ports = {1: 9192, 2: 9193, 3: 9194}

    def run(self, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(["bash", str(self.script), *args], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"cluster.sh {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    def running(self) -> bool:
        return subprocess.run(["bash", str(self.script), "status"], capture_output=True, timeout=60).returncode == 0

    @property
    def settings(self) -> dict[str, str]:
        """XPBANK_BROKER and XPBANK_REPLICATION_FACTOR as the script wrote them."""
        return read_env_file(run_root() / "kafka-cluster" / "cluster.env")

    def pid(self, broker: int) -> int | None:
        path = run_root() / "kafka-cluster" / f"broker-{broker}.pid"
        try:
            pid = int(path.read_text())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def kill9(self, broker: int) -> None:
        pid = self.pid(broker)
        assert pid, f"broker {broker} is not running"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.pid(broker):
            assert time.monotonic() < deadline, f"broker {broker} survived kill -9"
            time.sleep(0.1)

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": ",".join(f"127.0.0.1:{p}" for p in self.ports.values())})

    def partitions(self, prefix: str = "") -> dict[tuple[str, int], tuple[int, list[int], list[int]]]:
        """(topic, partition) -> (leader, replicas, in-sync replicas) of the topics under `prefix`."""
        topics = self.admin().list_topics(timeout=30).topics
        return {(name, p.id): (p.leader, list(p.replicas), list(p.isrs)) for name, meta in topics.items()
                if name.startswith(prefix) for p in meta.partitions.values()}

    def wait_in_sync(self, timeout: float = 180) -> None:
        """Until every partition of every topic has all its replicas in sync and a leader."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                lagging = {tp: v for tp, v in self.partitions().items() if v[0] < 0 or sorted(v[1]) != sorted(v[2])}
            except Exception as exc:  # noqa: BLE001 - a broker still starting
                lagging = {"metadata": str(exc)}
            if not lagging:
                return
            assert time.monotonic() < deadline, f"replicas not in sync after {timeout}s: {list(lagging.items())[:5]}"
            time.sleep(1)

    def up(self) -> KafkaCluster:
        self.run("up")
        self.wait_in_sync()
        return self


class RedisClusterNodes:
    """`deploy/redis/cluster.sh` (make redis-up-cluster): three masters with a replica each
    on 7101-7106."""

    script = ROOT / "deploy/redis/cluster.sh"
    ports = {n: 7100 + n for n in range(1, 7)}

    def run(self, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(["bash", str(self.script), *args], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"redis cluster.sh {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    def running(self) -> bool:
        return subprocess.run(["bash", str(self.script), "status"], capture_output=True, timeout=60).returncode == 0

    @property
    def url(self) -> str:
        return read_env_file(run_root() / "redis-cluster" / "cluster.env")["XPBANK_REDIS_URL"]

    def pid(self, node: int) -> int | None:
        try:
            pid = int((run_root() / "redis-cluster" / f"node-{node}.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if alive(pid) else None

    def node(self, node: int) -> redis.Redis:
        return redis.Redis(port=self.ports[node], socket_timeout=5, socket_connect_timeout=2)

    def role(self, node: int) -> str:
        with self.node(node) as client:
            return client.execute_command("ROLE")[0].decode()

    def masters(self) -> list[int]:
        return [n for n in self.ports if self.pid(n) and self.role(n) == "master"]

    def replica_of(self, master: int) -> int:
        with self.node(master) as client:
            port = client.info("replication")["slave0"]["port"]
        return next(n for n, p in self.ports.items() if p == port)

    def client(self) -> RedisCluster:
        return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", p) for p in self.ports.values()],
                            require_full_coverage=False, socket_timeout=5)

    def kill9(self, node: int) -> None:
        pid = self.pid(node)
        assert pid, f"node {node} is not running"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.pid(node):
            assert time.monotonic() < deadline, f"node {node} survived kill -9"
            time.sleep(0.05)

    def up(self) -> RedisClusterNodes:
        self.run("up")
        return self


def drop_cluster_keys(nodes: RedisClusterNodes, prefix: str) -> None:
    """Delete a test's keys (a meta per hash slot among them: 16,384), one batch per node."""
    with nodes.client() as client:
        pipe = client.pipeline(transaction=False)
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            pipe.delete(key)
        pipe.execute()
        assert not list(client.scan_iter(match=f"{prefix}*", count=1000))
