"""The write-back sinks against servers that check the published contracts (issue 20):
Stoplight Prism built from docs/openapi/ validates every request in front of a store
with PUT semantics (tests/sink_store.py). The gradebook equals the current facts and the
xpEarned per learner equals each learner's XP from `xpbank facts`, through 503s and 429s
with Retry-After, a switch-over from the replaced system's results, refusals for good
and an expired token. The long faults (kill -9, a 30 s outage, a replay, a broker
outage) are in test_sinks_faults.py (slow)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import orjson
import pytest

from tests.conftest import both_engines, xpbank
from tests.e2e.harness import Worker, get_json, produce, wait_caught_up
from tests.e2e.sinks_harness import (  # contract, fresh: the module's fixtures
    Contract, SinkProc, assert_written_back, contract, current_facts, fact_lines, facts_of_a_classroom, fresh,
    run_until_caught_up, sink_dead_letters, wait_sinks_caught_up, xp_per_learner,
)
from tests.e2e.test_parity_and_replay import classroom_log

pytestmark = pytest.mark.e2e


def replaced_systems_result(fact: dict) -> tuple[str, dict]:
    """A banked result as the replaced system wrote it (bjornpagen/nice, src/lib/xp/bank.ts)."""
    line_item = f"{fact['resourceSourcedId']}_ali"
    sourced_id = f"nice_{fact['userSourcedId']}_{line_item}"
    return sourced_id, {
        "sourcedId": sourced_id, "status": "active", "assessmentLineItem": {"sourcedId": line_item},
        "student": {"sourcedId": fact["userSourcedId"]}, "score": 100, "scoreStatus": "fully graded",
        "scoreDate": fact["eventTime"], "comment": "Banked XP awarded upon exercise completion.",
        "metadata": {"xp": fact["xp"] + 7, "xpReason": "Banked XP", "nice_timeSpent": 321, "multiplier": 1.0,
                     "completedAt": fact["eventTime"], "penaltyApplied": False}}


@both_engines
def test_both_sinks_write_back_a_workers_facts_through_servers_that_check_the_contracts(env, settings, tmp_path,
                                                                                         fresh):
    lines = classroom_log(learners=8, seed=23)
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, lines)
    worker = Worker(env, "w", tmp_path).start()
    try:
        wait_caught_up(settings)
        facts = current_facts(env)
        banked = next(f for f in facts.values() if f["kind"] == "banked" and f["xp"] > 0)
        nice_id, nice_result = replaced_systems_result(banked)
        fresh.store.results[nice_id] = nice_result  # switching over: the replaced system wrote this one
        later = format_datetime(datetime.now(UTC) + timedelta(seconds=1), usegmt=True)
        fresh.store.faults.busy = [(503, "1"), (429, "1"), (503, later), (429, "0")]

        started = time.monotonic()
        run_until_caught_up(fresh.sink_env(env, tmp_path), tmp_path, "oneroster", "caliper")
        print(f"sinks: {len(facts)} facts written back in {time.monotonic() - started:.1f}s")

        assert_written_back(env, fresh)
        held = fresh.store.results[nice_id]
        assert held["metadata"]["xp"] == banked["xp"] and held["metadata"]["factId"] == banked["factId"]
        assert held["metadata"]["nice_timeSpent"] == 321 and held["score"] == 100  # not xpbank's: kept
        assert fresh.store.received[("PUT", "/ims/oneroster/gradebook/v1p2/assessmentResults/{sourcedId}", 201)] == len(facts)
        busy = sum(n for (_, _, status), n in fresh.store.received.items() if status in (429, 503))
        assert busy == 4 and fresh.store.duplicates == 0 and sink_dead_letters(settings) == []

        status, overview = get_json(worker, "/ui/api/overview")  # the live page lists the sinks
        assert status == 200
        assert {(s["sink"], s["status"], s["lag"]) for s in overview["sinks"]} == {("oneroster", "stopped", 0),
                                                                                   ("caliper", "stopped", 0)}
    finally:
        worker.stop()


def test_refusals_for_good_are_dead_lettered_with_request_and_response_and_a_401_refreshes_the_token(
        env, settings, tmp_path, fresh):
    facts, current = facts_of_a_classroom(settings, learners=6, seed=5)
    earners = xp_per_learner({fid: f.model_dump(mode="json") for fid, f in current.items()})
    refused_learner = sorted(earners)[0]
    refused_result = next(f for f in current.values() if f.kind == "banked" and f.userSourcedId != refused_learner)
    refused_id = f"nice_{refused_result.userSourcedId}_{refused_result.resourceSourcedId}_ali"
    fresh.store.faults.refused_actors = {refused_learner}
    fresh.store.faults.refused_results = {refused_id}
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, fact_lines(facts))
    sink_env = fresh.sink_env(env, tmp_path) | {"XPBANK_CALIPER_BATCH_SIZE": "10"}
    sinks = [SinkProc(sink_env, name, tmp_path).start() for name in ("oneroster", "caliper")]
    try:
        wait_sinks_caught_up(settings)
        grown = [f.model_copy(update={"revision": f.revision + 1, "xp": f.xp + 2}) for f in current.values()
                 if f.kind == "banked" and f.xp > 0][:6]
        fresh.store.token_lifetime = 3600  # the next token outlives the test: only a 401 replaces it
        produce(env, fact_lines(grown[:3]))
        wait_sinks_caught_up(settings)
        fresh.store.revoke_tokens()  # the gradebook forgets the sink's token: it must fetch a new one
        produce(env, fact_lines(grown[3:]))
        wait_sinks_caught_up(settings)

        letters = sink_dead_letters(settings)
        caliper = [d for d in letters if d["sink"] == "caliper"]
        oneroster = [d for d in letters if d["sink"] == "oneroster"]
        assert caliper and all(d["factId"].split(":")[1] == refused_learner for d in caliper)
        for letter in caliper:  # each refused alone, with its request (one event) and the answer
            sent = orjson.loads(letter["request"]["body"])
            assert len(sent["data"]) == 1 and letter["response"]["status"] == 400 and letter["reason"] == "refused"
            assert sent["data"][0]["extensions"]["xpbankFactId"] == letter["factId"]
            assert letter["request"]["method"] == "POST" and "Authorization" not in orjson.dumps(letter).decode()
        assert {d["factId"] for d in oneroster} == {refused_result.factId}
        assert {d["response"]["status"] for d in oneroster} == {422}
        assert all(orjson.loads(d["request"]["body"])["assessmentResult"]["sourcedId"] == refused_id for d in oneroster)

        gradebook = fresh.store.snapshot()[0]
        assert refused_id not in gradebook
        latest = {f.factId: f for f in [*current.values(), *grown]}
        for grown_fact in grown:
            if grown_fact.factId != refused_result.factId:
                held = gradebook[f"nice_{grown_fact.userSourcedId}_{grown_fact.resourceSourcedId}_ali"]
                assert (held["metadata"]["xp"], held["metadata"]["revision"]) == (grown_fact.xp, grown_fact.revision)
        want = xp_per_learner({fid: f.model_dump(mode="json") for fid, f in latest.items()})
        assert fresh.store.xp_earned_per_learner() == {u: xp for u, xp in want.items() if u != refused_learner}

        assert fresh.store.received[("GET", "/ims/oneroster/gradebook/v1p2/assessmentResults/{sourcedId}", 401)] \
            + fresh.store.received[("PUT", "/ims/oneroster/gradebook/v1p2/assessmentResults/{sourcedId}", 401)] >= 1
        counted = sinks[0].metrics()
        assert counted['xpbank_sink_requests_total{sink="oneroster",status="401"}'] >= 1
        assert counted['xpbank_sink_dead_letters_total{sink="oneroster"}'] == len(oneroster)
        assert sinks[1].metrics()['xpbank_sink_dead_letters_total{sink="caliper"}'] == len(caliper)
        assert sinks[0].get("/healthz")[0] == 200 and fresh.violations() == []

        # the servers fixed: the refused facts are re-driven to the sinks, once
        fresh.store.faults.refused_actors, fresh.store.faults.refused_results = set(), set()
        redriven = xpbank(env, "dead-letters", "redrive", "--reason", "refused")
        assert redriven.returncode == 0, redriven.stderr.decode()
        assert f"{len(letters)} re-driven" in redriven.stderr.decode() or \
            f"{len({(d['topic'], d['partition'], d['offset']) for d in letters})} re-driven" in redriven.stderr.decode()
        wait_sinks_caught_up(settings)
        assert fresh.store.xp_earned_per_learner() == want  # the refused learner's XP arrived too
        held = fresh.store.snapshot()[0][refused_id]
        assert held["metadata"]["xp"] == latest[refused_result.factId].xp
        again = xpbank(env, "dead-letters", "redrive", "--reason", "refused")
        assert again.returncode == 0 and b"0 re-driven," in again.stderr, again.stderr.decode()
        listed = xpbank(env, "dead-letters", "list", "--reason", "refused").stdout.decode()
        assert listed.count("re-driven to xp.facts.v1/") == len(letters)
    finally:
        for sink in sinks:
            sink.stop()
    assert all("Traceback" not in sink.log() for sink in sinks)
