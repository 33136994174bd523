"""The write-back sinks' throughput (issue 20): results/s of `xpbank sink oneroster` and
events/s of `xpbank sink caliper`, each writing a backlog of banked facts to a local
server (tests/sink_store.py in a process of its own, on loopback, no Prism) with its
default concurrency (8 requests in flight; 4 envelopes of 100 events).

- **Facts**: one revision per banked fact over 1,000 learners and 20 resources, produced
  to `xp.facts.v1` before the sink starts (a backfill: the sink's fastest case).
- **Rate**: written (or acknowledged) facts over the time from the sink's first write to
  its last, read from its /metrics every 0.1 s: the consumer group's join is not counted.
- OneRoster costs two requests per result (GET the held result, then PUT it merged).

`python -m bench.sinks` prints the figures; `sinks_figures()` returns them."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson

from bench.procs import ROOT, Proc, free_port

FACTS = 20_000  # at BENCH_SCALE=1
TOKEN = "bench-sink-token"


def facts(count: int) -> list[tuple[bytes, bytes, int]]:
    """(factId, XpFact JSON, timestamp ms) of `count` banked facts, dated an hour ago."""
    moment = datetime.now(UTC) - timedelta(hours=1)
    stamp, when = int(moment.timestamp() * 1000), moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    out = []
    for n in range(count):
        user, resource = f"learner-{n // 20:05d}", f"video-{n % 20:02d}"
        fact_id = f"bank:{user}:{resource}"
        out.append((fact_id.encode(), orjson.dumps({
            "factId": fact_id, "kind": "banked", "generation": 1, "revision": 1, "userSourcedId": user,
            "email": f"{user}@school.example", "date": date.fromtimestamp(moment.timestamp()).isoformat(),
            "courseSourcedId": "course-1", "subject": "Math", "resourceSourcedId": resource,
            "exerciseSourcedId": "exercise-1", "attempt": 1, "xp": 1 + n % 5, "eventTime": when,
            "sources": [f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, fact_id)}"]}), stamp))
    return out


def metric(port: int, sample: str) -> float:
    """One sample of a sink's /metrics (name with labels), 0 while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.rsplit(" ", 1)[0] == sample:
                    return float(line.rsplit(" ", 1)[1])
    except OSError:
        pass
    return 0.0


def measure(env: dict[str, str], sink: str, tmp: Path, expected: int, timeout: float = 900) -> dict:
    port = free_port()
    env = env | {f"XPBANK_{'ONEROSTER' if sink == 'oneroster' else 'CALIPER'}_SINK_PORT": str(port)}
    proc = Proc([str(ROOT / ".venv/bin/xpbank"), "sink", sink, "--until-caught-up"], env, tmp / f"sink-{sink}.log")
    proc.start()
    first = last = None
    written = 0.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = proc.alive()
        written = metric(port, f'xpbank_sink_written_total{{sink="{sink}"}}') or written
        now = time.monotonic()
        if written and first is None:
            first = now
        if written >= expected or not alive:  # --until-caught-up: exit 0 once everything is written
            last = now
            break
        time.sleep(0.1)
    if proc.process.wait(60) != 0 or first is None or last is None:
        raise RuntimeError(f"sink {sink} wrote {written:.0f} of {expected} facts: {proc.log()[-2000:]}")
    seconds = max(last - first, 1e-3)
    return {"facts": expected, "seconds": round(seconds, 2), "per_s": expected / seconds}


def sinks_figures(broker: str, scale: float = 1.0, say=print) -> dict:
    """Both sinks against a local server, on their own topics (deleted afterwards)."""
    from bench.broker import delete_prefix, produce
    from xpbank.config import Settings
    from xpbank.contract.topics import FACTS as FACTS_TOPIC, registry_setups
    from xpbank.kafka.admin import converge

    run = f"benchsink{uuid.uuid4().hex[:8]}."
    store_port = free_port()
    env = {**os.environ, "XPBANK_BROKER": f"kafka://{broker}", "XPBANK_TOPIC_PREFIX": run,
           "XPBANK_PARTITIONS": os.environ.get("BENCH_PARTITIONS", "4"), "XPBANK_METRICS_PUBLIC": "1",
           "XPBANK_ONEROSTER_URL": f"http://127.0.0.1:{store_port}", "XPBANK_ONEROSTER_TOKEN": TOKEN,
           "XPBANK_CALIPER_SINK_URL": f"http://127.0.0.1:{store_port}/caliper/event", "XPBANK_CALIPER_SINK_TOKEN": TOKEN}
    settings = Settings.from_env(env)
    count = max(int(FACTS * scale), 500)
    asyncio.run(converge(settings, registry_setups(run, settings.partitions, 1, -1)))
    asyncio.run(produce(settings.bootstrap_servers, run + FACTS_TOPIC, facts(count)))
    figures: dict = {"facts": count, "server": "tests/sink_store.py (aiohttp, one process)"}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-sinks-") as tmp_name:
            tmp = Path(tmp_name)
            store = Proc([sys.executable, "-m", "tests.sink_store", "--port", str(store_port), "--token", TOKEN],
                         {**os.environ, "PYTHONPATH": str(ROOT)}, tmp / "store.log").start()
            try:
                time.sleep(1.5)
                figures["oneroster"] = measure(env, "oneroster", tmp, count)
                say(f"sinks: oneroster {figures['oneroster']['per_s']:,.0f} results/s ({count:,} facts)")
                figures["caliper"] = measure(env, "caliper", tmp, count)
                say(f"sinks: caliper {figures['caliper']['per_s']:,.0f} events/s ({count:,} facts)")
            finally:
                store.stop()
    finally:
        asyncio.run(delete_prefix(broker, run))
    return figures


def summary(f: dict) -> dict:
    return {"sink_oneroster_results_per_s": round(f["oneroster"]["per_s"]),
            "sink_caliper_events_per_s": round(f["caliper"]["per_s"])}


def sink_rows(s: dict) -> list[tuple[str, str, str, str]]:
    """(figure, value, target, PASS/MISS/-) for the summary table (bench/report.py)."""
    return [("sink oneroster: results written to a local server (GET + PUT each)",
             f"{s['sink_oneroster_results_per_s']:,} results/s", "", ""),
            ("sink caliper: XP-earned events acknowledged (envelopes of 100)",
             f"{s['sink_caliper_events_per_s']:,} events/s", "", "")]


def main() -> int:
    from bench.broker import ensure_broker

    broker = os.environ.get("XPBANK_BROKER", "kafka://127.0.0.1:9092").split("://", 1)[-1]
    ensure_broker(broker, bool(os.environ.get("XPBANK_BROKER")))
    found = summary(sinks_figures(broker, float(os.environ.get("BENCH_SCALE", "1.0"))))
    print("\n| figure | value | target | |\n|---|---|---|---|")
    for row in sink_rows(found):
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
