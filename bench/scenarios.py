"""The four benchmarks of issue 6. Each runs against its own topic prefix and returns
plain numbers; `bench.__main__` puts them together."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import subprocess
import sys
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench import payloads
from bench.broker import GroupWatch, produce, raw_ceiling, topic_bytes
from bench.procs import Proc, dir_bytes
from bench.profiles import collapsed
from xpbank.config import Settings
from xpbank.runtime.engines import engine_of
from xpbank.runtime.topology import app_id, changelog_topic, create_topics, input_topics
from xpbank.contract.topics import CALIPER, CURRICULUM, FACTS, SUBMISSIONS

HOUR = timedelta(hours=1)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def prepare(env: dict[str, str], resources: int) -> Settings:
    """Topics created and the course published (the worker waits for the curriculum)."""
    settings = Settings.from_env(env)
    asyncio.run(create_topics(settings))
    course = [(payloads.COURSE.encode(), payloads.course(resources), payloads.ms(payloads.now() - 6 * HOUR))]
    asyncio.run(produce(settings.bootstrap_servers, settings.topic_prefix + CURRICULUM, course))
    return settings


READY = "Worker ready"  # both engines: partitions assigned, state recovered (the peers: assigned)
RESTORING = ("Restoring state from changelog topics", "Recovery successful for")  # Faust's, Quix's log lines


def watch(settings: Settings, group: str, topics: list[str], total: int, proc: Proc, timeout: float,
          on_sample=None) -> tuple[float, float]:
    """(records/s, seconds) of `proc`'s group from its "Worker ready" to lag 0."""
    def sample(committed: int, lag: int) -> None:
        proc.mark(READY)
        if on_sample:
            on_sample(committed, lag)

    async def run():
        async with GroupWatch(settings.bootstrap_servers) as w:
            return await w.until_caught_up(group, topics, total, proc.alive, timeout, on_sample=sample)
    progress = asyncio.run(run())
    ready = proc.mark(READY)
    if ready is None:
        raise RuntimeError(f"no {READY!r} in {proc.log_path}")
    return progress.rate(ready)


def produce_shape(env: dict[str, str], shape: str, records: list, per: int, resources: int) -> tuple[Settings, dict]:
    """Topics, the course and a shape's records produced once; every program then reads
    the same records with its own consumer group. Also the raw ceiling over them."""
    settings = prepare(env, resources)
    caliper = settings.topic_prefix + CALIPER
    produced = asyncio.run(produce(settings.bootstrap_servers, caliper, records))
    events = len(records) * per
    say(f"shape ({shape}): produced {len(records):,} records / {events:,} events in {produced:.1f}s")
    out: dict = {"records": len(records), "events": events, "events_per_record": per}
    out["raw"] = asyncio.run(raw_ceiling(settings.bootstrap_servers, caliper, per))
    say(f"shape ({shape}): raw ceiling {out['raw']['records_per_s']:,.0f} records/s")
    return settings, out


PEERS = {"quix": "bench.quix_peer", "faust_floor": "bench.floor", "faust_table": "bench.faust_table"}


def peer(env: dict[str, str], tmp: Path, shape: str, name: str, settings: Settings, records: int,
         timeout: float) -> dict:
    """One peer program (PEERS) over the shape's caliper topic, from "Worker ready" to lag 0."""
    caliper = settings.topic_prefix + CALIPER
    proc = Proc.peer(env, PEERS[name], f"peer-{name}-{shape}", caliper, tmp).start()
    try:
        rate, seconds = watch(settings, proc.env["BENCH_PEER_APP"], [caliper], records, proc, timeout)
    finally:
        proc.stop()
    say(f"shape ({shape}): peer {name} {rate:,.0f} records/s")
    return {"records_per_s": rate, "seconds": seconds}


def worker(env: dict[str, str], tmp: Path, name: str, records: int, per: int, timeout: float) -> tuple[dict, Proc]:
    """One xpbank worker (engine and guarantee from `env`) over the shape's records, from
    "Worker ready" to every input committed. Returned stopped, its stores on disk."""
    settings = Settings.from_env(env)
    proc = Proc.xpbank(env, name, tmp).start()
    profilers: list = []  # sampling from "Worker ready", as the rate: imports and start-up are not the figure
    rss: list[tuple[int, float]] = []

    def sample(committed: int, lag: int) -> None:
        rss.append((ready := proc.mark(READY), proc.rss_mb()))
        if ready is not None and not profilers:
            profilers.append(profile(proc, name))
    try:
        rate, seconds = watch(settings, app_id(settings), input_topics(settings), records + 1, proc, timeout,
                              on_sample=sample)
        startup = proc.marks[READY] - proc.started
    finally:
        proc.stop()
        summary = profiled(profilers[0] if profilers else None, name)
    base = [mb for ready, mb in rss if ready is None] or [rss[0][1]]  # before it consumed anything
    out = {"records_per_s": rate, "events_per_s": rate * per, "seconds": seconds, "startup_s": startup,
           "rss_start_mb": base[-1], "rss_end_mb": rss[-1][1], "profile": summary}
    say(f"{name}: {rate:,.0f} records/s = {rate * per:,.0f} events/s")
    return out, proc


def pyspy() -> str | None:
    """BENCH_PYSPY, else py-spy beside this Python (`make bench` installs it), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return os.environ.get("BENCH_PYSPY") or (str(beside) if beside.exists() else shutil.which("py-spy"))


def profile(proc: Proc, name: str):
    """With BENCH_PROFILE=DIR (`python -m bench` sets one in its run's directory when py-spy
    is there), py-spy samples the process until it exits, into DIR/NAME.txt (collapsed
    stacks, 50 Hz, without pausing the process)."""
    out = os.environ.get("BENCH_PROFILE")
    if not out:
        return None
    Path(out).mkdir(parents=True, exist_ok=True)
    binary = pyspy() or sys.exit("BENCH_PROFILE needs py-spy: pip install py-spy, or set BENCH_PYSPY to its path")
    return subprocess.Popen([binary, "record", "--pid", str(proc.process.pid), "--rate", "50", "--nonblocking",
                             "--format", "raw", "-o", f"{out}/{name}.txt"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def profiled(profiler, name: str) -> dict | None:
    """The summary of a finished `profile` (bench/profiles.py), or None."""
    if profiler is None:
        return None
    profiler.wait(30)
    path = Path(os.environ["BENCH_PROFILE"]) / f"{name}.txt"
    return collapsed(path) if path.exists() else None


def state_and_recovery(settings: Settings, worker: Proc, tmp: Path, pairs: int, records: int, events: int,
                       timeout: float) -> dict:
    """Store size of the stopped worker, then the same worker restarted without its
    stores (rebuilt from the changelogs), then a replay of the same input."""
    out = {"pairs": pairs, "store_bytes": dir_bytes(worker.data_dir)}
    # both engines: the one store's changelog (every key of a learner)
    changelog = changelog_topic(settings, engine_of(settings).stores[0])
    keys, live = asyncio.run(topic_bytes(settings.bootstrap_servers, changelog))
    out |= {"changelog": changelog, "changelog_keys": keys, "changelog_bytes": live}
    shutil.rmtree(worker.data_dir)
    again = Proc(worker.argv, worker.env, tmp / f"{worker.log_path.stem}-recovery.log").start()
    profiler = profile(again, f"{worker.log_path.stem}-recovery")
    try:
        out["recovery_s"] = again.wait_log(READY, timeout)
        log = again.log()
        out["recovery_read_changelogs"] = any(line in log for line in RESTORING)
        out["recovered_store_bytes"] = dir_bytes(worker.data_dir)
    finally:
        again.stop()
        out["recovery_profile"] = profiled(profiler, f"{worker.log_path.stem}-recovery")
    say(f"recovery ({settings.engine}): {pairs:,} pairs rebuilt in {out['recovery_s']:.1f}s (start to 'Worker ready')")
    replay = Proc.xpbank(worker.env, f"replay-{settings.engine}", tmp, "replay", "--generation", "2").start()
    try:
        group = app_id(Settings.from_env(worker.env | {"XPBANK_GENERATION": "2"}))
        rate, seconds = watch(settings, group, [settings.topic_prefix + CALIPER], records, replay, timeout)
        out["replay_wall_s"] = replay.wait_exit(timeout)
    finally:
        replay.stop()
    out["replay_events_per_s"] = rate * events / records
    say(f"replay ({settings.engine}): {out['replay_events_per_s']:,.0f} events/s ({out['replay_wall_s']:.1f}s wall, start to exit)")
    return out


async def _latency(settings: Settings, sequences: int, rate_hz: float, per: int, pace_s: float, run: int) -> dict:
    bootstrap, prefix = settings.bootstrap_servers, settings.topic_prefix
    tail = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=20)
    await tail.start()
    facts = [TopicPartition(prefix + FACTS, p) for p in range(settings.partitions)]
    tail.assign(facts)
    await tail.seek_to_end(*facts)
    for tp in facts:
        await tail.position(tp)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1)
    await producer.start()
    ids, stop = payloads.Ids(), asyncio.Event()
    sent_banked: dict[str, tuple[float, int]] = {}  # fact id -> (sent at, sequence number)
    sent_exercise: dict[str, float] = {}
    acked: dict[int, float] = {}  # sequence number -> the broker's ack of its finalize, seconds after the send
    banked: list[tuple[float, int, float]] = []  # (seconds, sequence number, sent at): where the tail falls
    exercise: list[float] = []
    heartbeats = 0

    async def background() -> None:
        """`rate_hz` heartbeats/s of other learners, as envelopes of `per` events (1: single events)."""
        nonlocal heartbeats
        tick, started, sent = 0.05, time.monotonic(), 0
        while not stop.is_set():
            due = int((time.monotonic() - started) * rate_hz / per) - sent
            at = payloads.now()
            for _ in range(max(due, 0)):
                user = f"bg-{sent % 1000:04d}"
                data = [payloads.time_spent(ids, user, (sent // 1000 + i) % 4, at, seconds=1) for i in range(per)]
                value = orjson.dumps(data[0] if per == 1 else {"sensor": payloads.SENSOR, "sendTime": payloads.iso(at),
                                                               "dataVersion": payloads.CALIPER_V, "data": data})
                await producer.send(prefix + CALIPER, key=user.encode(), value=value, timestamp_ms=payloads.ms(at))
                sent += 1
                heartbeats += per
            await asyncio.sleep(tick)

    async def follow() -> None:
        while not stop.is_set() or sent_banked:
            for messages in (await tail.getmany(timeout_ms=100)).values():
                seen = time.time()
                for m in messages:
                    fid = orjson.loads(m.value)["factId"]
                    if fid in sent_banked:
                        sent_at, number = sent_banked.pop(fid)
                        banked.append((seen - sent_at, number, sent_at))
                    elif fid in sent_exercise:
                        exercise.append(seen - sent_exercise.pop(fid))
            if stop.is_set() and time.monotonic() > deadline:
                return

    deadline = float("inf")
    tasks = [asyncio.create_task(background()), asyncio.create_task(follow())]
    await asyncio.sleep(5)  # the flow is established before the first measurement
    for n in range(sequences):
        user = f"lat-{run}-{n:04d}"
        at = payloads.now()
        for rid in ("video-0", "article-1"):
            hb = payloads.time_spent(ids, user, rid, at - timedelta(seconds=90), seconds=60)
            await producer.send(prefix + CALIPER, key=user.encode(), value=orjson.dumps(hb), timestamp_ms=payloads.ms(at))
        *first, finalize = payloads.attempt(ids, user, "exercise-0", at)
        for value in first:
            await producer.send(prefix + SUBMISSIONS, key=user.encode(), value=value, timestamp_ms=payloads.ms(at))
        await producer.flush()
        await asyncio.sleep(pace_s / 2)
        sent_at = time.time()
        sent_banked[f"bank:{user}:video-0"], sent_exercise[f"exercise:{user}:exercise-0:1"] = (sent_at, n), sent_at
        sending = await producer.send(prefix + SUBMISSIONS, key=user.encode(), value=finalize,
                                      timestamp_ms=payloads.ms(at))
        sending.add_done_callback(lambda _, n=n, sent_at=sent_at: acked.__setitem__(n, time.time() - sent_at))
        await asyncio.sleep(pace_s / 2)
    deadline = time.monotonic() + 60
    stop.set()
    await asyncio.gather(*tasks)
    await producer.stop()
    await tail.stop()
    return {"sequences": sequences, "banked_s": [seconds for seconds, _, _ in banked], "exercise_s": exercise,
            "missing": len(sent_banked), "background_heartbeats": heartbeats,
            # [sequence, ms, of which until the broker acked the finalize, when (to find in logs)]
            "slowest": [[number, round(seconds * 1000, 1), round(acked.get(number, float("nan")) * 1000, 1),
                         datetime.fromtimestamp(sent_at, UTC).strftime("%H:%M:%S.%f")[:-3]]
                        for seconds, number, sent_at in sorted(banked, reverse=True)[:5]]}


def percentiles(samples: list[float]) -> dict:
    if len(samples) < 2:
        return {"p50": None, "p95": None, "p99": None}
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": cuts[49] * 1000, "p95": cuts[94] * 1000, "p99": cuts[98] * 1000}


@contextlib.contextmanager
def client_collections(over_ms: float = 5.0):
    """This process's heap out of its collector's sight while it measures (gc.freeze):
    by the latency runs it holds what the runs before them left, and a full collection
    of that took 30-50 ms, a pause in the client's clock, not in the worker. Yields the
    collections over `over_ms` that still happen, in ms, for the report."""
    pauses: list[float] = []
    started = [0.0]

    def timed(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif (ms := (time.perf_counter() - started[0]) * 1000) > over_ms:
            pauses.append(round(ms, 1))

    gc.collect()
    gc.freeze()
    gc.callbacks.append(timed)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(timed)
        gc.unfreeze()


def latency(env: dict[str, str], tmp: Path, sequences: int, rate_hz: float, per: int, pace_s: float,
            timeout: float, runs: int = 3) -> dict:
    """`runs` measurements in a row against one worker, each under its own background load
    (a target holds only if it holds in every run)."""
    settings = prepare(env, 4)
    worker = Proc.xpbank(env, f"worker-latency-{settings.engine}", tmp).start()
    measured = []
    try:
        worker.wait_log(READY, timeout)
        for run in range(runs):
            with client_collections() as pauses:
                result = asyncio.run(_latency(settings, sequences, rate_hz, per, pace_s, run))
            out = {"banked": percentiles(result["banked_s"]), "exercise": percentiles(result["exercise_s"]),
                   "sequences": sequences, "measured": len(result["banked_s"]), "missing": result["missing"],
                   "slowest": result["slowest"],  # [sequence, ms, finalize acked ms, UTC]: the tail's place
                   "client_collections_ms": pauses, "loadavg": round(os.getloadavg()[0], 2)}
            say(f"latency ({settings.engine}) run {run + 1}/{runs}: AttemptFinalized -> banked fact "
                f"p50 {out['banked']['p50']:.0f} ms, p95 {out['banked']['p95']:.0f} ms, p99 {out['banked']['p99']:.0f} ms "
                f"({out['measured']}/{sequences} measured, load average {out['loadavg']}; slowest, sequence: ms "
                f"{', '.join(f'{n}: {ms:.0f} (acked {ack:.0f}) at {at}' for n, ms, ack, at in out['slowest'])}; "
                f"the client's own collections over 5 ms: {len(pauses)})")
            measured.append(out | {"background_heartbeats": result["background_heartbeats"]})
    finally:
        worker.stop()
    worst = max(measured, key=lambda m: m["banked"]["p99"] if m["banked"]["p99"] is not None else float("inf"))
    return worst | {"runs": measured, "background_heartbeats_per_s": rate_hz, "background_events_per_record": per}
