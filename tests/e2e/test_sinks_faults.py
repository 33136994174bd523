"""The write-back sinks through the long faults (issue 20, slow tier): while a worker's
facts stream in, each sink is killed -9 with requests in flight, the servers answer 503
and 429 for a while, go down for 30 s, and the inputs are replayed into generation 2;
after each, the gradebook equals the current facts and the xpEarned per learner equals
each learner's XP from `xpbank facts`, every request having passed Prism's check. A
broker outage, too: the sinks say so on /healthz, never exit, and lose nothing."""

from __future__ import annotations

import time

import orjson
import pytest

from tests.conftest import Broker, both_engines, make_env, xpbank
from tests.e2e.harness import Stream, Worker, eventually, produce, topic_values, wait_caught_up
from tests.e2e.sinks_harness import (  # contract, fresh: the module's fixtures
    Contract, SinkProc, assert_written_back, contract, current_facts, fact_lines, facts_of_a_classroom, fresh,
    wait_sinks_caught_up,
)
from tests.e2e.test_parity_and_replay import classroom_log
from xpbank.config import Settings
from xpbank.contract.topics import FACTS, sink_group
from xpbank.kafka.admin import Admin

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SINKS = ("oneroster", "caliper")


def unacknowledged(settings: Settings) -> dict[str, int]:
    """Fact records each sink group has not committed (not yet written, as far as it knows)."""
    import asyncio

    async def left() -> dict[str, int]:
        admin = Admin(settings)
        return {name: sum((await admin.lag(sink_group(settings.topic_prefix, name),
                                           [settings.topic_prefix + FACTS])).values()) for name in SINKS}
    return asyncio.run(left())


def kill_mid_stream(fresh: Contract, settings: Settings, sinks: dict[str, SinkProc]) -> dict:
    """Kill -9 each sink while the store holds requests of it unanswered (its answers wait
    200 ms) after it wrote some: returns, per sink, the requests in flight at its kill and
    the fact records it had not committed after it."""
    proof = {}
    for name, path in (("caliper", "events"), ("oneroster", "results")):  # caliper is done sooner: first
        def busy(name: str = name, path: str = path) -> None:
            results, events = fresh.store.snapshot()
            assert sinks[name].alive(), f"sink {name} exited: {sinks[name].log()[-3000:]}"
            assert fresh.store.in_flight_paths[path] > 0 and len(results if path == "results" else events) >= 4
        eventually(busy, timeout=120, every=0.005)
        in_flight = fresh.store.in_flight_paths[path]
        sinks[name].kill9()
        proof[name] = (in_flight, unacknowledged(settings)[name])
    return proof


def generation_two_events(settings: Settings, held_before: dict[str, int]) -> int:
    """The events a replay must send: per fact, each generation-2 revision whose xp differs
    from what the analytics server held for it before (a replay that changes nothing sends nothing)."""
    expected, held = 0, dict(held_before)
    for fact in topic_values(settings, "xp.facts.v1"):
        if fact["generation"] == 2:
            if fact["xp"] != held.get(fact["factId"], 0):
                expected += 1
            held[fact["factId"]] = fact["xp"]
    return expected


@both_engines
def test_kill_9_busy_answers_an_outage_and_a_replay_leave_the_write_back_exact(env, settings, tmp_path, fresh):
    lines = classroom_log(learners=16, seed=31)
    assert xpbank(env, "topics", "create").returncode == 0
    sink_env = fresh.sink_env(env, tmp_path) | {"XPBANK_CALIPER_BATCH_SIZE": "4", "XPBANK_CALIPER_CONCURRENCY": "1",
                                                "XPBANK_ONEROSTER_CONCURRENCY": "2"}
    fresh.store.faults.delay = 0.2  # every answer takes 200 ms: requests are in flight at any instant
    worker = Worker(env, "w", tmp_path).start()
    sinks = {name: SinkProc(sink_env, name, tmp_path).start() for name in SINKS}
    try:
        facts = _stream_kill_busy_outage(env, settings, fresh, worker, sinks, sink_env, tmp_path, lines)
        worker.stop()
        events_before, held = len(fresh.store.events), {fid: f["xp"] for fid, f in facts.items()}
        replay = xpbank(env | {"XPBANK_DATA_DIR": str(tmp_path / "replay")}, "replay", "--generation", "2", timeout=300)
        assert replay.returncode == 0, replay.stderr.decode()[-2000:]
        wait_sinks_caught_up(settings)
        replayed = assert_written_back(env, fresh)
        assert {f["generation"] for f in replayed.values()} == {2}
        results = fresh.store.snapshot()[0]
        assert {r["metadata"]["generation"] for r in results.values()} == {2}  # every result rewritten from generation 2
        assert len(fresh.store.events) - events_before == generation_two_events(settings, held)
    finally:
        worker.stop()
        for sink in sinks.values():
            sink.stop()
    assert all("Traceback" not in sink.log() for sink in sinks.values())


def _stream_kill_busy_outage(env, settings, fresh, worker, sinks, sink_env, tmp_path, lines) -> dict:
    """Stream two thirds of the classroom in, kill -9 both sinks mid-stream and start them
    again, answer 503 then 429 for a while, take the servers down for 30 s while the last
    third comes in: then the write-back must be exact. Returns the current facts."""
    streamed, during_outage = lines[:len(lines) * 2 // 3], lines[len(lines) * 2 // 3:]
    stream = Stream(settings, streamed, batch=10, pause=0.1).start()
    proof = kill_mid_stream(fresh, settings, sinks)
    print(f"kill -9 (requests in flight at the kill, facts not committed after it): {proof}")
    assert all(in_flight > 0 and left > 0 for in_flight, left in proof.values())
    sinks.update({name: SinkProc(sink_env, name, tmp_path).start() for name in SINKS})

    fresh.store.faults.delay = 0.0
    fresh.store.faults.busy = [(503, "1")] * 15 + [(429, "1")] * 15  # the next 30 answers, with Retry-After

    def answered_busy() -> None:
        assert not fresh.store.faults.busy
    eventually(answered_busy, timeout=120, every=0.5)
    assert {s for (_, _, s) in fresh.store.received} >= {429, 503}

    stream.join(300)
    fresh.gradebook.stop()
    fresh.analytics.stop()  # the servers down for 30 s: connections refused
    down = time.monotonic()
    produce(env, during_outage)  # facts the sinks must write meanwhile
    eventually(lambda: _unready(sinks), timeout=25, every=0.5)
    time.sleep(max(0.0, 30 - (time.monotonic() - down)))
    assert all(sink.alive() for sink in sinks.values())
    fresh.gradebook.start()
    fresh.analytics.start()

    wait_caught_up(settings)
    wait_sinks_caught_up(settings)
    facts = assert_written_back(env, fresh)
    counted = {name: sink.metrics() for name, sink in sinks.items()}
    assert all(counted[n][f'xpbank_sink_requests_total{{sink="{n}",status="error"}}'] > 0 for n in SINKS)
    assert all(counted[n][f'xpbank_sink_retries_total{{sink="{n}"}}'] > 0 for n in SINKS)
    assert all(sink.get("/healthz")[0] == 200 for sink in sinks.values())
    return facts


def _unready(sinks: dict[str, SinkProc]) -> None:
    for sink in sinks.values():
        status, body = sink.get("/healthz")
        assert status == 503 and orjson.loads(body)["server"] is False, body


def test_a_broker_outage_is_reported_and_waited_out_by_both_sinks(redis_url, tmp_path, contract):
    contract.reset()
    own = Broker(tmp_path / "kafka", 19610).up()  # stopped below: not the shared one
    sinks: dict[str, SinkProc] = {}
    try:
        env, _ = make_env(own.url, redis_url, tmp_path)
        settings = Settings.from_env(env)
        facts, _ = facts_of_a_classroom(settings, learners=6, seed=41)
        first, second = facts[:len(facts) // 2], facts[len(facts) // 2:]
        assert xpbank(env, "topics", "create").returncode == 0
        produce(env, fact_lines(first))
        sink_env = contract.sink_env(env, tmp_path)
        sinks = {name: SinkProc(sink_env, name, tmp_path).start() for name in SINKS}
        wait_sinks_caught_up(settings)

        assert own.run("down").returncode == 0
        def broker_down() -> None:
            for sink in sinks.values():
                status, body = sink.get("/healthz")
                assert status == 503 and orjson.loads(body)["broker"] is False, body
                assert sink.metrics()[f'xpbank_sink_broker_up{{sink="{sink.name}"}}'] == 0
        eventually(broker_down, timeout=60, every=1)
        time.sleep(10)
        assert all(sink.alive() for sink in sinks.values())

        own.up()
        produce(env, fact_lines(second))
        wait_sinks_caught_up(settings, 240)
        eventually(lambda: _ready(sinks), timeout=30)
        assert_written_back(env, contract)
        assert current_facts(env)
    finally:
        for sink in sinks.values():
            sink.stop()
        own.run("down", "--purge")
    assert all("Traceback" not in sink.log() for sink in sinks.values())


def _ready(sinks: dict[str, SinkProc]) -> None:
    assert all(sink.get("/healthz")[0] == 200 for sink in sinks.values())
