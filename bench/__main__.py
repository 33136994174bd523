"""`make bench` (`python -m bench`): every benchmark of issue 6 in one run; prints a
table and writes bench/results/latest.json and bench/results/YYYY-MM-DD.md.

BENCH_SCALE (default 1.0) shrinks every size for a quick smoke run."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

from bench import payloads
from bench.broker import delete_prefix, ensure_broker
from bench.gateway import gateway_figures
from bench.core import core
from bench.report import machine, results, write
from bench.scenarios import HOUR, ingest, latency, say, state_and_recovery

EVENTS = 200_000  # per ingest shape
PAIRS = 100_000  # (user, resource) pairs built by shape (b): 5,000 learners x 20 resources
RESOURCES = 20
PER_RESOURCE = 2  # an envelope's 20 heartbeats: 2 on each of 10 resources (10 pair writes)


def main() -> int:
    scale = float(os.environ.get("BENCH_SCALE", "1.0"))
    explicit = bool(os.environ.get("XPBANK_BROKER"))
    broker = os.environ.get("XPBANK_BROKER", "kafka://127.0.0.1:9092")
    ensure_broker(broker.split("://", 1)[-1], explicit)
    run = f"bench{uuid.uuid4().hex[:8]}"
    events, pairs = int(EVENTS * scale), max(int(PAIRS * scale), RESOURCES)
    learners = pairs // RESOURCES
    timeout = 900.0
    started = time.monotonic()
    say(f"run {run}: scale {scale}, {events:,} events per shape, {pairs:,} pairs, broker {broker}")

    def env(part: str) -> dict[str, str]:
        return {**os.environ, "XPBANK_BROKER": broker, "XPBANK_TOPIC_PREFIX": f"{run}{part}.",
                "XPBANK_PARTITIONS": os.environ.get("BENCH_PARTITIONS", "4")}

    figures: dict = {"scale": scale, "run": run}
    figures["core"] = core(scale, say=say)  # in-process, before any worker loads the machine
    with tempfile.TemporaryDirectory(prefix=f"{run}-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            start = payloads.now() - 6 * HOUR
            singles = payloads.singles(events, learners, RESOURCES, start)
            figures["single"], _ = ingest(env("a"), tmp, "a", singles, 1, RESOURCES, True, timeout)
            del singles
            # events/20 envelopes over `learners`: two rounds of 10 resources each = every pair
            envelopes = payloads.envelopes(events, learners, RESOURCES, start, per_resource=PER_RESOURCE)
            figures["envelope"], worker = ingest(env("b"), tmp, "b", envelopes, 20, RESOURCES, False, timeout)
            del envelopes
            from xpbank.config import Settings
            figures["state"] = state_and_recovery(Settings.from_env(env("b")), worker, tmp, pairs,
                                                  figures["envelope"]["records"], events, timeout)
            figures["latency"] = latency(env("l"), tmp, max(int(200 * scale), 20), 2000.0,
                                         int(os.environ.get("BENCH_LATENCY_PER_RECORD", "20")), 0.2, timeout)
            figures["gateway"] = gateway_figures(broker.split("://", 1)[-1], scale, say)  # issue 13
        except BaseException:
            keep = Path(__file__).parent / "results" / f"failed-{run}"
            os.system(f"mkdir -p {keep} && cp {tmp}/*.log {keep}/ 2>/dev/null")
            say(f"failed: worker logs kept in {keep}")
            raise
        finally:
            deleted = asyncio.run(delete_prefix(broker.split("://", 1)[-1], run))
            say(f"deleted this run's {len(deleted)} topics")
    figures["total_s"] = time.monotonic() - started
    summary = results(figures, machine())
    write(summary, figures, Path(__file__).parent / "results")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
