"""The core in-process: `handle_record` over a MemoryStore, no Kafka (issue 14).

`python -m bench.core` (or `core()` from `python -m bench`) feeds every record of the
ingest shapes to `processing.handlers.handle_record(store, InputRecord(...), rules,
owner=<the record key>)`, state kept across records as the worker keeps it, and also
with `owner=None` (the path `xpbank simulate` takes). Each shape runs BENCH_CORE_REPEAT
times (default 5) on a fresh store; the figures are the best repetition's, wall clock
and process CPU time both (the machine is shared: the spread between repetitions is in
`details`). InputRecords are built before timing, as an engine builds them before it
calls the core, and frozen out of the garbage collector's sight (gc.freeze: a worker
does not hold 200,000 records in its heap; the state built while timing stays in it).
Every repetition checks that every heartbeat was accepted."""

from __future__ import annotations

import cProfile
import gc
import os
import pstats
import statistics
import time
from datetime import UTC, datetime, timedelta

import orjson

from bench import payloads
from bench.profiles import cprofile
from xpbank.contract.topics import CALIPER, CURRICULUM
from xpbank.core.rules import Rules
from xpbank.processing.handlers import InputRecord, handle_record
from xpbank.processing.state import MemoryStore

EVENTS = 200_000  # per shape, as the ingest benchmark
LEARNERS = 5_000
RESOURCES = 20
PER_RESOURCE = 2  # an envelope: 2 heartbeats on each of 10 resources


def input_records(shape: list[payloads.Record]) -> list[tuple[InputRecord, str]]:
    """(record, owner) as the worker hands them to the core: partition 0, the key as owner."""
    return [(InputRecord(CALIPER, key, value, datetime.fromtimestamp(ms / 1000, UTC), 0, offset, CALIPER), key.decode())
            for offset, (key, value, ms) in enumerate(shape)]


def fresh_store(rules: Rules, course: bytes, at: datetime) -> MemoryStore:
    store = MemoryStore()
    handle_record(store, InputRecord(CURRICULUM, payloads.COURSE.encode(), course, at), rules)
    return store


def run_once(records: list[tuple[InputRecord, str]], events: int, rules: Rules, course: bytes, at: datetime,
             with_owner: bool) -> dict:
    store = fresh_store(rules, course, at)
    accepted = 0
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    if with_owner:  # the counts read as the engines read them (runtime/records.observe)
        for record, owner in records:
            for name, amount in handle_record(store, record, rules, owner=owner).counted:
                if name == "time_spent_accepted":
                    accepted += amount
    else:
        for record, _ in records:
            for name, amount in handle_record(store, record, rules).counted:
                if name == "time_spent_accepted":
                    accepted += amount
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if accepted != events:
        raise AssertionError(f"{accepted} of {events} heartbeats accepted: the benchmark measures something else")
    return {"wall_s": wall, "cpu_s": cpu}


def measure(records: list[tuple[InputRecord, str]], events: int, repeat: int, rules: Rules, course: bytes,
            at: datetime, with_owner: bool) -> dict:
    runs = [run_once(records, events, rules, course, at, with_owner) for _ in range(repeat)]
    best_wall = min(r["wall_s"] for r in runs)
    best_cpu = min(r["cpu_s"] for r in runs)
    return {
        "events": events, "records": len(records), "repeat": repeat,
        "events_per_s": round(events / best_wall),
        "cpu_events_per_s": round(events / best_cpu),
        "us_per_event": round(best_wall / events * 1e6, 3),
        "cpu_us_per_event": round(best_cpu / events * 1e6, 3),
        "median_events_per_s": round(events / statistics.median(r["wall_s"] for r in runs)),
        "runs": [{k: round(v, 4) for k, v in r.items()} for r in runs],
    }


def profile(records: list[tuple[InputRecord, str]], rules: Rules, course: bytes, at: datetime,
            limit: int = 40_000) -> dict:
    """cProfile of the owner path over the first `limit` records, on a fresh store: what
    bounds the figure (bench/profiles.py)."""
    store = fresh_store(rules, course, at)
    profiler = cProfile.Profile()
    profiler.enable()
    for record, owner in records[:limit]:
        handle_record(store, record, rules, owner=owner)
    profiler.disable()
    return cprofile(pstats.Stats(profiler))


def core(scale: float = 1.0, repeat: int | None = None, say=print) -> dict:
    repeat = repeat or int(os.environ.get("BENCH_CORE_REPEAT", "5"))
    events = max(int(EVENTS * scale), 20 * RESOURCES)
    learners = max(int(LEARNERS * scale), 1)
    rules = Rules()
    start = payloads.now() - timedelta(hours=6)
    course = payloads.course(RESOURCES)
    load_before = os.getloadavg()
    details: dict = {"events": events, "learners": learners, "resources": RESOURCES, "per_resource": PER_RESOURCE,
                     "loadavg_before": [round(x, 2) for x in load_before], "cpus": os.cpu_count()}
    shapes = {
        "single": payloads.singles(events, learners, RESOURCES, start),
        "envelope": payloads.envelopes(events, learners, RESOURCES, start, per_resource=PER_RESOURCE),
    }
    for name, shape in shapes.items():
        records = input_records(shape)
        gc.freeze()
        for path, with_owner in (("owner", True), ("simulate", False)):
            figures = measure(records, events, repeat, rules, course, start, with_owner)
            details[f"{name}_{path}"] = figures
            say(f"core {name:<8} {path:<8} {figures['events_per_s']:>9,} events/s "
                f"({figures['us_per_event']:.2f} µs, CPU {figures['cpu_us_per_event']:.2f} µs per event; "
                f"median {figures['median_events_per_s']:,}/s of {repeat})")
        details[f"{name}_profile"] = profile(records, rules, course, start)
        gc.unfreeze()
    details["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    return {
        "core_single_events_per_s": details["single_owner"]["events_per_s"],
        "core_envelope_events_per_s": details["envelope_owner"]["events_per_s"],
        "details": details,
    }


def main() -> int:
    result = core(float(os.environ.get("BENCH_SCALE", "1.0")))
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
