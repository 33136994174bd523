"""The gateway's throughput and latency (issue 13): requests/s and events/s through one
`xpbank gateway` process on this machine, p50/p99 request latency, next to the broker's
raw produce rate for the same records.

- **Load generator**: a separate process on loopback with keep-alive connections and a
  fixed number of requests: `wrk` (Debian's, C; `make bench` installs it where apt-get
  can) else this module's aiohttp client (`python -m bench.gateway loadgen`, which costs
  the shared CPU more). Saturation: closed loop (64 connections for single events, 16 for
  100-event envelopes). Below saturation: at half the saturated rate, each connection
  pausing between its requests (wrk's `delay`; the aiohttp client runs open loop and
  measures latency from each request's scheduled time).
- **CPU per request**: the gateway process's user+system CPU time over the saturated run,
  per request; 1e6 / that is what one free core would serve.
- **Shapes**: single-event envelopes (one TimeSpentEvent, 5,000 learners round-robin) and
  100-event envelopes (one learner's 100 heartbeats), from a pool of distinct bodies.
- **Raw**: the same records (the envelope keyed by its learner) produced in-process with
  the gateway's producer settings (acks=all, idempotent, 5 ms linger).

`python -m bench.gateway` prints the figures as JSON; `gateway_figures()` returns them."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from aiokafka import AIOKafkaProducer

from bench import payloads
from bench.procs import Proc, free_port

TOKEN_ENV = "BENCH_GATEWAY_TOKEN"
SHAPES = {"single": 1, "hundred": 100}  # events per envelope
POOL = {"single": 5000, "hundred": 200}  # distinct bodies per shape
REQUESTS = {"single": 60_000, "hundred": 3_000}  # per measurement at BENCH_SCALE=1
CONNECTIONS = {"single": 64, "hundred": 16}  # at saturation
BELOW_CONNECTIONS = 32
BELOW_SATURATION = 0.5  # open-loop rate: this share of the measured saturated rate
ROUNDS = 2


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bodies(shape: str) -> list[tuple[bytes, bytes, int]]:
    """(learner key, envelope, timestamp ms): the records the gateway makes of them."""
    per = SHAPES[shape]
    start = payloads.now() - timedelta(hours=6)
    return payloads.envelopes(POOL[shape] * per, POOL[shape], 20, start, per=per, per_resource=max(per // 10, 1))


# ---- the broker's raw produce rate ----------------------------------------------------


async def raw_produce(bootstrap: str, topic: str, pool: list, count: int, per: int) -> dict:
    from xpbank.gateway.sender import LINGER_MS, MAX_BATCH_BYTES

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=LINGER_MS, max_batch_size=MAX_BATCH_BYTES)
    await producer.start()
    try:
        started = time.monotonic()
        pending = []
        for n in range(count):
            key, value, ts = pool[n % len(pool)]
            pending.append(await producer.send(topic, value=value, key=key, timestamp_ms=ts))
        await asyncio.gather(*pending)
        seconds = time.monotonic() - started
    finally:
        await producer.stop()
    return {"records": count, "seconds": seconds, "records_per_s": count / seconds, "events_per_s": count * per / seconds}


# ---- load generators ------------------------------------------------------------------


WRK_SCRIPT = r"""
local limit, done_ = tonumber(os.getenv("BENCH_WRK_PER_THREAD")), 0
local pause = tonumber(os.getenv("BENCH_WRK_DELAY_MS") or "0")
math.randomseed(os.time())
local reqs, n = {}, 0
init = function(args)
  local f = io.open(os.getenv("BENCH_BODIES"))
  for line in f:lines() do
    reqs[#reqs + 1] = wrk.format("POST", "/caliper/v1p2", {["Host"] = "127.0.0.1",
      ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("BENCH_GATEWAY_TOKEN")}, line)
  end
  f:close()
end
request = function() n = n + 1; return reqs[(n % #reqs) + 1] end
if pause > 0 then delay = function() return math.random() * 2 * pause end end  -- jitter: no bursts
response = function(status, headers, body)
  done_ = done_ + 1
  if done_ == limit then io.write("DONE\n"); io.flush(); wrk.thread:stop() end
end
done = function(summary, latency, requests)
  io.write(string.format('BENCH {"responses": %d, "non2xx": %d, "socket_errors": %d, ' ..
    '"p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n', summary.requests,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def wrk_run(url: str, token: str, bodies_file: Path, count: int, connections: int, tmp: Path,
            rate: float | None = None) -> dict:
    """`count` requests by wrk (one thread): timed from its start to the count-th response
    (wrk runs for a duration, so the script says DONE and wrk is interrupted). With `rate`,
    each connection pauses connections/rate between its requests (at most that rate)."""
    script = tmp / "gateway.lua"
    script.write_text(WRK_SCRIPT)
    # the pause leaves room for the request itself (~8 ms): the rate reached is reported
    pause = max(1000 * connections / rate - 8, 0.5) if rate else 0
    env = os.environ | {"BENCH_WRK_PER_THREAD": str(count), "BENCH_BODIES": str(bodies_file), TOKEN_ENV: token,
                        "BENCH_WRK_DELAY_MS": f"{pause:.2f}"}
    started = time.monotonic()
    proc = subprocess.Popen(["wrk", "-t1", f"-c{connections}", "-d300s", "--timeout", "10s", "-s", str(script),
                             url + "/caliper/v1p2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = None
    for line in proc.stdout:
        if line.startswith("DONE"):
            seconds = time.monotonic() - started
            proc.send_signal(signal.SIGINT)
        elif line.startswith("BENCH "):
            found = json.loads(line[6:])
    proc.wait(30)
    if seconds is None:
        raise RuntimeError(f"wrk did not finish {count} requests: {proc.stderr.read()}")
    return found | {"tool": "wrk", "requests": count, "seconds": seconds, "requests_per_s": count / seconds, "rate": rate}


def python_run(url: str, token: str, bodies_file: Path, count: int, connections: int, rate: float | None = None) -> dict:
    env = os.environ | {TOKEN_ENV: token, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    argv = [sys.executable, "-m", "bench.gateway", "loadgen", "--url", url, "--bodies", str(bodies_file),
            "--requests", str(count), "--connections", str(connections)] + (["--rate", str(rate)] if rate else [])
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1]) | {"tool": "aiohttp"}


async def loadgen(url: str, bodies: list[bytes], count: int, connections: int, rate: float | None) -> dict:
    """`count` POSTs over `connections` keep-alive connections; closed loop, or open loop at
    `rate` requests/s (latency from the scheduled send time)."""
    import aiohttp
    import uvloop  # noqa: F401 - the client is as fast as it can be too

    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {os.environ[TOKEN_ENV]}"}
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        queue = iter(range(count))
        started = time.monotonic()

        async def one(n: int, scheduled: float) -> None:
            async with session.post(url + "/caliper/v1p2", data=bodies[n % len(bodies)]) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            latencies.append(time.monotonic() - scheduled)

        if rate is None:
            async def worker() -> None:
                for n in queue:
                    await one(n, time.monotonic())
            await asyncio.gather(*(worker() for _ in range(connections)))
        else:
            limit = asyncio.Semaphore(connections * 4)
            tasks = []
            for n in range(count):
                scheduled = started + n / rate
                delay = scheduled - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await limit.acquire()
                task = asyncio.ensure_future(one(n, scheduled))
                task.add_done_callback(lambda _t: limit.release())
                tasks.append(task)
            await asyncio.gather(*tasks)
        seconds = time.monotonic() - started
    latencies.sort()
    return {"requests": count, "seconds": seconds, "requests_per_s": count / seconds, "statuses": statuses,
            "non2xx": count - statuses.get(200, 0), "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))], "max_ms": 1000 * latencies[-1],
            "rate": rate}


# ---- one gateway, every measurement --------------------------------------------------


class GatewayProc:
    def __init__(self, env: dict[str, str], tmp: Path, loop: str) -> None:
        self.port, self.token = free_port(), uuid.uuid4().hex
        env = env | {"XPBANK_GATEWAY_PORT": str(self.port), "XPBANK_GATEWAY_TOKENS": self.token,
                     # one token drives every connection: its rates must not be what is measured
                     "XPBANK_GATEWAY_TOKEN_REQUESTS_PER_SECOND": "1000000",
                     "XPBANK_GATEWAY_TOKEN_BYTES_PER_SECOND": str(1 << 40), "XPBANK_GATEWAY_READS_PER_TOKEN": "1024"}
        self.proc = Proc([str(Path(__file__).resolve().parents[1] / ".venv/bin/xpbank"), "gateway", "--loop", loop],
                         env, tmp / f"gateway-{loop}-{self.port}.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> GatewayProc:
        self.proc.start()
        self.proc.wait_log("connected to the broker", 60)
        self.proc.wait_log("gateway ready", 60)
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stop()


def gateway_figures(broker: str, scale: float = 1.0, say=print) -> dict:
    """Every gateway figure against `broker` (host:port); topics under a prefix of their own,
    deleted afterwards."""
    from bench.broker import delete_prefix
    from xpbank.config import Settings
    from xpbank.contract.topics import CALIPER, registry_setups
    from xpbank.kafka.admin import converge

    run = f"benchgw{uuid.uuid4().hex[:8]}."
    env = {**os.environ, "XPBANK_BROKER": f"kafka://{broker}", "XPBANK_TOPIC_PREFIX": run,
           "XPBANK_PARTITIONS": os.environ.get("BENCH_PARTITIONS", "4")}
    settings = Settings.from_env(env)
    asyncio.run(converge(settings, registry_setups(run, settings.partitions, 1, -1)))
    tool = "wrk" if shutil.which("wrk") else "aiohttp"
    figures: dict = {"tool": tool, "cpus": os.cpu_count(), "loadavg_before": os.getloadavg()[0]}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp_name:
            tmp = Path(tmp_name)
            for shape, per in SHAPES.items():
                pool = bodies(shape)
                count = max(int(REQUESTS[shape] * scale), 500)
                file = tmp / f"{shape}.jsonl"
                file.write_bytes(b"\n".join(value for _, value, _ in pool) + b"\n")
                raw = asyncio.run(raw_produce(settings.bootstrap_servers, run + CALIPER, pool, count, per))
                say(f"gateway {shape}: raw produce {raw['records_per_s']:,.0f} records/s ({raw['events_per_s']:,.0f} events/s)")
                shape_figures = {"events_per_request": per, "requests": count, "body_bytes": len(pool[0][1]), "raw": raw}
                # interleaved rounds (the machine is shared): the median of each loop's runs counts
                loops = ("uvloop", "asyncio") * ROUNDS if shape == "single" else ("uvloop",) * ROUNDS
                runs: dict[str, list] = {}
                for loop in loops:
                    with GatewayProc(env, tmp, loop) as gateway:
                        def run_load(n: int, rate: float | None = None) -> dict:
                            connections = BELOW_CONNECTIONS if rate and tool == "wrk" else CONNECTIONS[shape]
                            if tool == "wrk":
                                return wrk_run(gateway.url, gateway.token, file, n, connections, tmp, rate)
                            return python_run(gateway.url, gateway.token, file, n, connections, rate)
                        run_load(min(count // 10, 2000))  # warm-up: connections, metadata, first batches
                        cpu = cpu_seconds(gateway.proc.process.pid)
                        saturated = run_load(count)
                        saturated["cpu_us_per_request"] = (cpu_seconds(gateway.proc.process.pid) - cpu) * 1e6 / count
                        saturated["events_per_s"] = saturated["requests_per_s"] * per
                        say(f"gateway {shape} ({loop}): {saturated['requests_per_s']:,.0f} requests/s, "
                            f"{saturated['events_per_s']:,.0f} events/s, p50 {saturated['p50_ms']:.1f} ms, "
                            f"p99 {saturated['p99_ms']:.1f} ms at saturation ({saturated['non2xx']} not 200), "
                            f"{saturated['cpu_us_per_request']:.0f} us CPU per request")
                        entry = {"saturated": saturated}
                        if loop == "uvloop" and "uvloop" not in runs:
                            rate = round(saturated["requests_per_s"] * BELOW_SATURATION)
                            below = run_load(max(min(count, rate * 10), 200), rate)
                            say(f"gateway {shape} ({loop}): at most {rate:,} requests/s ({below['requests_per_s']:,.0f} "
                                f"sent): p50 {below['p50_ms']:.1f} ms, p99 {below['p99_ms']:.1f} ms "
                                f"({below['non2xx']} not 200)")
                            entry["below_saturation"] = below
                        runs.setdefault(loop, []).append(entry)
                for loop, entries in runs.items():
                    shape_figures[loop] = {
                        "runs": entries,
                        "below_saturation": entries[0].get("below_saturation"),
                        **{k: statistics.median(e["saturated"][k] for e in entries)
                           for k in ("requests_per_s", "events_per_s", "p50_ms", "p99_ms", "cpu_us_per_request")},
                    }
                figures[shape] = shape_figures
    finally:
        asyncio.run(delete_prefix(broker, run))
    figures["loadavg_after"] = os.getloadavg()[0]  # the machine is shared: how busy it was
    return figures


def summary(f: dict) -> dict:
    """The headline numbers (bench/report.py and docs/benchmarks.md)."""
    single, hundred = f["single"], f["hundred"]
    return {
        "gateway_single_requests_per_s": round(single["uvloop"]["requests_per_s"]),
        "gateway_single_asyncio_requests_per_s": round(single["asyncio"]["requests_per_s"]),
        "gateway_single_cpu_us_per_request": round(single["uvloop"]["cpu_us_per_request"]),
        "gateway_hundred_events_per_s": round(hundred["uvloop"]["events_per_s"]),
        "gateway_hundred_cpu_us_per_request": round(hundred["uvloop"]["cpu_us_per_request"]),
        "gateway_single_p50_p99_ms": [round(single["uvloop"]["below_saturation"][k], 1) for k in ("p50_ms", "p99_ms")],
        "gateway_hundred_p50_p99_ms": [round(hundred["uvloop"]["below_saturation"][k], 1) for k in ("p50_ms", "p99_ms")],
        "gateway_single_saturated_p99_ms": round(single["uvloop"]["p99_ms"], 1),
        "gateway_raw_single_records_per_s": round(single["raw"]["records_per_s"]),
        "gateway_raw_hundred_events_per_s": round(hundred["raw"]["events_per_s"]),
        "gateway_loadavg": [round(f["loadavg_before"], 1), round(f["loadavg_after"], 1)],
    }


def gateway_rows(s: dict) -> list[tuple[str, str, str, str]]:
    """(figure, value, target, PASS/MISS/-) for the summary table (bench/report.py)."""
    def check(ok: bool) -> str:
        return "PASS" if ok else "MISS"
    single_p99 = s["gateway_single_p50_p99_ms"][1]
    hundred_p99 = s["gateway_hundred_p50_p99_ms"][1]
    return [
        ("gateway: single-event envelopes (uvloop)", f"{s['gateway_single_requests_per_s']:,} requests/s",
         ">= 5,000", check(s["gateway_single_requests_per_s"] >= 5000)),
        ("gateway: the same with asyncio's loop", f"{s['gateway_single_asyncio_requests_per_s']:,} requests/s", "", ""),
        ("gateway: CPU per single-event request", f"{s['gateway_single_cpu_us_per_request']:,} us", "", ""),
        ("gateway: single events, raw produce (same records)", f"{s['gateway_raw_single_records_per_s']:,} records/s", "", ""),
        ("gateway: 100-event envelopes", f"{s['gateway_hundred_events_per_s']:,} events/s", ">= 100,000",
         check(s["gateway_hundred_events_per_s"] >= 100_000)),
        ("gateway: 100-event envelopes, raw produce", f"{s['gateway_raw_hundred_events_per_s']:,} events/s", "", ""),
        ("gateway: latency p50/p99 at half saturation, single / x100",
         f"{s['gateway_single_p50_p99_ms'][0]:g}/{single_p99:g} ms, {s['gateway_hundred_p50_p99_ms'][0]:g}/{hundred_p99:g} ms",
         "p99 <= 50 ms", check(max(single_p99, hundred_p99) <= 50)),
        ("gateway: machine load average before/after (2 cores, shared)",
         "/".join(f"{v:g}" for v in s["gateway_loadavg"]), "", ""),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway")
    sub = parser.add_subparsers(dest="command")
    lg = sub.add_parser("loadgen", help="the aiohttp load generator (token in $BENCH_GATEWAY_TOKEN)")
    lg.add_argument("--url", required=True)
    lg.add_argument("--bodies", required=True)
    lg.add_argument("--requests", type=int, required=True)
    lg.add_argument("--connections", type=int, default=64)
    lg.add_argument("--rate", type=float)
    args = parser.parse_args(argv)
    if args.command == "loadgen":
        import uvloop

        bodies_ = [line for line in Path(args.bodies).read_bytes().splitlines() if line]
        result = uvloop.run(loadgen(args.url, bodies_, args.requests, args.connections, args.rate))
        print(json.dumps(result))
        return 0
    from bench.broker import ensure_broker

    broker = os.environ.get("XPBANK_BROKER", "kafka://127.0.0.1:9092").split("://", 1)[-1]
    ensure_broker(broker, bool(os.environ.get("XPBANK_BROKER")))
    figures = gateway_figures(broker, float(os.environ.get("BENCH_SCALE", "1.0")))
    found = summary(figures)
    out = Path(__file__).parent / "results" / "gateway-latest.json"
    out.write_text(json.dumps(found | {"details": figures}, indent=2) + "\n")
    print(json.dumps(found, indent=2))
    print(f"details: {out}")
    print("\n| figure | value | target | |\n|---|---|---|---|")
    for row in gateway_rows(found):
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
