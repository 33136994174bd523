"""Monitoring against live processes: workers of both engines, a projector on its own, a
gateway and both write-back sinks (against the test store) are scraped while a classroom
streams through them. Every metric an alert rule
(deploy/prometheus/rules) or a dashboard panel (deploy/grafana/xpbank.json) names must be
one the processes export, and the workers export lag per partition and the output
latency histogram."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request

import pytest
import yaml

from tests.conftest import ROOT, xpbank
from tests.e2e.harness import Worker, free_port, produce, wait_caught_up
from tests.e2e.sinks_harness import SinkProc, wait_sinks_caught_up
from tests.sink_store import Store, StoreServer
from tests.gateway_proc import Gateway
from xpbank.cli.classroom import classroom
from xpbank.config import Settings

pytestmark = pytest.mark.e2e
NAME = re.compile(r"\bxpbank_[a-z0-9_]+\b")  # recording rules (xpbank:...) are not exported names


def referenced() -> dict[str, set[str]]:
    """Metric names each rule file and the dashboard name in their expressions."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found.setdefault(path.name, set()).update(NAME.findall(rule["expr"]))
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "xpbank.json").read_text())
    found["xpbank.json"] = {name for panel in dashboard["panels"] for target in panel.get("targets", [])
                            for name in NAME.findall(target["expr"])}
    return found


def exported(text: str) -> set[str]:
    """Sample names and declared families (a histogram's with its _bucket, _sum, _count)."""
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    for kind, family in ((m[2], m[1]) for m in re.finditer(r"^# TYPE (\S+) (\S+)$", text, re.M)):
        names |= {family} | ({f"{family}_bucket", f"{family}_sum", f"{family}_count"} if kind == "histogram" else set())
    return names


def scrape(port: int, token: str) -> str | None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.read().decode()
    except (urllib.error.URLError, OSError):
        return None


def samples(text: str) -> dict[str, float]:
    return {name: float(value) for name, value in
            (line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))}


@pytest.fixture(scope="module")
def scraped(broker, redis_url, tmp_path_factory) -> dict[str, str | None]:
    """/metrics of each live process once a classroom went through (None: no answer)."""
    from tests.conftest import drop_redis_keys, make_env

    tmp = tmp_path_factory.mktemp("monitoring")
    env, tag = make_env(broker, redis_url, tmp)
    env["XPBANK_PROJECTOR"] = "0"  # the projector runs on its own, as in compose and Kubernetes
    assert xpbank(env, "topics", "create").returncode == 0
    started: list = []  # stopped at the end whatever happens
    try:
        faust = Worker(env | {"XPBANK_ENGINE": "faust"}, "faust", tmp)
        quix = Worker(env | {"XPBANK_ENGINE": "quix"}, "quix", tmp)
        started += [faust.start(), quix.start()]
        projector_port = free_port()
        started.append(subprocess.Popen([str(ROOT / ".venv/bin/xpbank"), "projector"], env=env | {
            "XPBANK_PROJECTOR_PORT": str(projector_port)}, stdout=open(tmp / "projector.log", "wb"), stderr=subprocess.STDOUT))
        gateway = Gateway(env, tmp)
        started.append(gateway)
        gateway.start()
        store = StoreServer(Store(tokens={"t-sink"}), free_port())
        started.append(store.start())
        sink_env = env | {"XPBANK_ONEROSTER_URL": store.url, "XPBANK_ONEROSTER_TOKEN": "t-sink",
                          "XPBANK_CALIPER_SINK_URL": store.url + "/caliper/event", "XPBANK_CALIPER_SINK_TOKEN": "t-sink"}
        sinks = {name: SinkProc(sink_env, name, tmp).start() for name in ("oneroster", "caliper")}
        started += sinks.values()
        produce(env, [a.line for a in classroom(learners=3, seed=11, pace=0.01)])
        for engine in ("faust", "quix"):
            wait_caught_up(Settings.from_env(env | {"XPBANK_ENGINE": engine}))
        wait_sinks_caught_up(Settings.from_env(env))
        token = env["XPBANK_API_TOKENS"]
        yield {"worker faust": scrape(int(faust.env["XPBANK_WEB_PORT"]), token),
               "worker quix": scrape(int(quix.env["XPBANK_WEB_PORT"]), token),
               "projector": scrape(projector_port, token), "gateway": scrape(gateway.port, token),
               **{f"sink {name}": scrape(sink.port, token) for name, sink in sinks.items()},
               "input partitions": env["XPBANK_PARTITIONS"], "prefix": env["XPBANK_TOPIC_PREFIX"]}
    finally:
        for process in started:
            if isinstance(process, subprocess.Popen):
                process.terminate()
                process.wait(30)
            else:
                process.stop()
        drop_redis_keys(redis_url, tag)


@pytest.mark.parametrize("engine", ["faust", "quix"])
def test_workers_export_lag_per_partition_output_latency_and_readiness(scraped, engine):
    found = samples(scraped[f"worker {engine}"])
    caliper = f"{scraped['prefix']}learning.caliper.v1"
    lag = {name for name in found if name.startswith(f'xpbank_consumer_lag{{topic="{caliper}",partition="')}
    assert len(lag) == int(scraped["input partitions"])  # one sample per partition
    assert all(found[name] == 0 for name in lag)  # caught up
    assert found["xpbank_output_latency_seconds_count"] > 0  # the classroom's outputs, each observed
    assert found['xpbank_output_latency_seconds_bucket{le="+Inf"}'] == found["xpbank_output_latency_seconds_count"]
    assert found["xpbank_worker_ready"] == 1


def test_every_metric_a_rule_or_panel_names_is_exported_by_the_live_processes(scraped):
    processes = {name: text for name, text in scraped.items()
                 if name.startswith(("worker", "projector", "gateway", "sink"))}
    live = set().union(*(exported(text) for text in processes.values() if text is not None))
    missing = {source: sorted(names - live) for source, names in referenced().items() if names - live}
    silent = sorted(name for name, text in processes.items() if text is None)
    assert (missing, silent) == ({}, []), f"named but not exported: {missing}; no /metrics answered: {silent}"
