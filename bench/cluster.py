"""The cost of replication (issue 22): one shape on the one broker and on the three-broker
cluster of `deploy/kafka/cluster.sh` (make kafka-up-cluster: replication factor 3,
min.insync.replicas 2), side by side in the same run: the same records produced with
acks=all, then processed by the same engine from "Worker ready" to every input committed
(its changelog and outputs written with acks=all too). All three brokers share this
machine's cores with the worker, so the figures are the cost here, an upper bound of a
cluster of separate machines."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

from bench.broker import delete_prefix, produce
from bench.scenarios import prepare, say, worker
from xpbank.contract.topics import CALIPER
from xpbank.kafka.clients import broker_answers

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "deploy/kafka/cluster.sh"
ENV_FILE = ROOT / ".run/kafka-cluster/cluster.env"


def cluster_broker() -> tuple[str, bool]:
    """The three brokers' XPBANK_BROKER, and whether this run started them (it stops them then)."""
    started = False
    if not (ENV_FILE.exists() and asyncio.run(broker_answers("127.0.0.1:9192"))):
        subprocess.run(["bash", str(SCRIPT), "up"], check=True, timeout=600)
        started = True
    line = next(l for l in ENV_FILE.read_text().splitlines() if l.startswith("XPBANK_BROKER="))
    return line.split("=", 1)[1].strip("'\""), started


def replication(env_of, tmp: Path, make_records, per: int, resources: int, engine: str, timeout: float) -> dict:
    """`env_of(part, **extra)`: a run's environment; `make_records()`: the shape's records."""
    cluster, started = cluster_broker()
    targets = {"one_broker": env_of("r1", XPBANK_ENGINE=engine),
               "three_brokers": env_of("r3", XPBANK_ENGINE=engine, XPBANK_BROKER=cluster, XPBANK_REPLICATION_FACTOR="3")}
    out: dict = {"engine": engine, "events_per_record": per}
    try:
        for target, env in targets.items():
            settings = prepare(env, resources)
            records = make_records()
            seconds = asyncio.run(produce(settings.bootstrap_servers, settings.topic_prefix + CALIPER, records,
                                          acks="all"))
            count = len(records)
            del records
            figures, _ = worker(env, tmp, f"{engine}-{target}", count, per, timeout)
            out[target] = {"records": count, "produce_records_per_s": count / seconds,
                           "worker_records_per_s": figures["records_per_s"]}
            say(f"replication ({target}): produce acks=all {count / seconds:,.0f} records/s, "
                f"{engine} {figures['records_per_s']:,.0f} records/s")
    finally:
        prefix = targets["three_brokers"]["XPBANK_TOPIC_PREFIX"]
        asyncio.run(delete_prefix(cluster.replace("kafka://", "").replace(";", ","), prefix))
        if started:
            time.sleep(1)
            subprocess.run(["bash", str(SCRIPT), "down"], check=False, timeout=300)
    return out


def replication_summary(r: dict) -> dict:
    one, three = r["one_broker"], r["three_brokers"]
    return {"engine": r["engine"],
            "produce_records_per_s": [round(one["produce_records_per_s"]), round(three["produce_records_per_s"])],
            "worker_records_per_s": [round(one["worker_records_per_s"]), round(three["worker_records_per_s"])],
            "produce_cost": round(1 - three["produce_records_per_s"] / one["produce_records_per_s"], 3),
            "worker_cost": round(1 - three["worker_records_per_s"] / one["worker_records_per_s"], 3)}


def replication_rows(s: dict) -> list[tuple[str, str, str, str]]:
    r = s["replication"]
    produce1, produce3 = r["produce_records_per_s"]
    worker1, worker3 = r["worker_records_per_s"]
    return [
        ("replication: singles produced acks=all, one broker / three (RF 3, min ISR 2)",
         f"{produce1:,} / {produce3:,} records/s ({r['produce_cost']:.0%} cost)", "", ""),
        (f"replication: {r['engine']} singles, one broker / three",
         f"{worker1:,} / {worker3:,} records/s ({r['worker_cost']:.0%} cost)", "", ""),
    ]
