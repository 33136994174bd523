"""The read models' pure parts: planned upserts, the API's views and the metrics text."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.attempt_views import attempt_view
from xpbank.read.api import health, render_metrics
from xpbank.observe.latency import Histogram
from xpbank.config import Settings
from xpbank.core.attempts import OpenAttempt
from xpbank.contract.outputs import (
    REASONS, AttemptCompleted, AttemptDiscarded, AttemptOpened, AttemptProgressed, BankingDecided, XpFact,
)
from xpbank.read.projection import Keys, key_slot, plan_attempt, plan_decision, plan_fact, slot_tag, xp_view
from xpbank.cli.records import read_lines
from xpbank.processing.simulate import Simulator

LOG = Path(__file__).resolve().parents[2] / "examples" / "seed002.jsonl"


def seed002():
    simulator = Simulator(Settings.from_env({}).rules)
    outputs = list(simulator.run(read_lines(LOG.read_bytes().splitlines())))
    return simulator, [o.value for o in outputs]


def test_a_fact_plans_one_upsert_of_its_key_the_learners_totals_and_banked_status():
    _, values = seed002()
    facts = [v for v in values if isinstance(v, XpFact)]
    assert {f.kind for f in facts} == {"exercise", "banked"}
    keys = Keys("p:")
    for fact in facts:
        upsert = plan_fact(keys, fact)
        user = fact.userSourcedId
        assert upsert.script == "fact"
        assert upsert.keys == (f"p:fact:{fact.factId}", f"p:xp:{user}", f"p:xp-by-date:{user}", f"p:banked:{user}")
        assert upsert.args[:4] == (fact.generation, fact.revision, fact.xp, fact.eventTime.date().isoformat())
        assert upsert.args[5:] == (fact.kind, fact.resourceSourcedId)


def test_attempt_events_plan_the_pointer_of_seed_003_guarded_by_generation_and_offset():
    simulator, values = seed002()
    events = [v for v in values if isinstance(v, AttemptOpened | AttemptProgressed | AttemptCompleted | AttemptDiscarded)]
    assert [type(e) for e in events] == [AttemptOpened, AttemptProgressed, AttemptProgressed, AttemptCompleted]
    keys = Keys()
    plans = [plan_attempt(keys, e, offset) for offset, e in enumerate(events, start=10)]
    assert plans[0].keys == ("xpbank:assess:active:u1:ex1", "xpbank:assess:last:u1:ex1",
                             "xpbank:attempt-open:u1:ex1", "xpbank:attempt-done:u1:ex1", "xpbank:exercises:u1")
    assert [p.args[:4] for p in plans] == [(1, 10, "open", 1), (1, 11, "open", 1), (1, 12, "open", 1),
                                           (1, 13, "completed", 1)]
    # the views the API serves are the ones the worker's state gives
    assert orjson.loads(plans[-1].args[4]) == attempt_view("u1", "ex1", simulator.store.attempts("u1", "ex1"))[1]
    assert orjson.loads(plans[2].args[4]) == {"userSourcedId": "u1", "exerciseSourcedId": "ex1", "status": "open",
                                              "attempt": 1, "answered": 2, "correct": 2, "reported": 0,
                                              "totalQuestions": 2}


def test_a_decision_plans_its_evidence_as_explain_answers_it():
    simulator, values = seed002()
    [decided] = [v for v in values if isinstance(v, BankingDecided)]
    upsert = plan_decision(Keys("p:"), decided, 7)
    assert upsert.keys == ("p:decision:u1:ex1", "p:exercises:u1") and upsert.args[:2] == (1, 7)
    assert upsert.args[3] == "ex1"
    assert orjson.loads(upsert.args[2]) == decided.explanation().model_dump(mode="json")
    assert "id" not in orjson.loads(upsert.args[2]) and "generation" not in orjson.loads(upsert.args[2])


def test_scan_pattern_escapes_glob_characters_of_the_prefix():
    assert Keys("a*b[1]:").pattern == "a\\*b\\[1\\]:*"
    assert Keys().pattern == "xpbank:*"


def test_xp_view_reads_raw_redis_values_and_leaves_out_empty_dates():
    view = xp_view("u1", b"9", {b"2026-11-22": b"4", b"2026-11-21": b"5", b"2026-11-20": b"0"})
    assert view == {"userSourcedId": "u1", "totalXp": 9, "byDate": {"2026-11-21": 5, "2026-11-22": 4}}
    assert list(view["byDate"]) == ["2026-11-21", "2026-11-22"]
    assert xp_view("nobody", None, {}) == {"userSourcedId": "nobody", "totalXp": 0, "byDate": {}}


def test_attempt_view_shows_the_open_attempt_else_the_last_completed_else_404():
    simulator, values = seed002()
    state = simulator.store.attempts("u1", "ex1")
    done = next(v for v in values if isinstance(v, AttemptCompleted))
    status, body = attempt_view("u1", "ex1", state)
    assert status == 200 and body["status"] == "completed"
    assert (body["attempt"], body["correct"], body["total"], body["exerciseXp"]) == (done.attempt, done.correct, done.total, done.exerciseXp)
    opened = state._replace(open=OpenAttempt(number=2, answers=(("q1", True), ("q2", False), ("q3", True)), reported=("q3",)))
    status, body = attempt_view("u1", "ex1", opened)
    assert status == 200 and (body["status"], body["attempt"], body["answered"], body["correct"]) == ("open", 2, 2, 1)
    assert attempt_view("u1", "ex9", None) == (404, {"userSourcedId": "u1", "exerciseSourcedId": "ex9", "status": "none", "nextAttempt": 1})


def test_health_is_ready_only_when_recovered_not_rebalancing_and_curriculum_loaded():
    assert health(True, False, True)[0] == 200
    assert all(health(*flags)[0] == 503 for flags in [(False, False, True), (True, True, True), (True, False, False)])


def test_metrics_are_prometheus_text_with_every_dead_letter_reason():
    simulator, _ = seed002()
    counts = simulator.counts.copy()
    counts.update({"records_in:learning.caliper.v1": 3, "clamped_ms": 1500, "awards": 2})
    latency = Histogram()
    latency.observe_since([1_000, 9_000, None], now_ms=10_000)  # 9 s and 1 s old; an unstamped output is skipped
    text = render_metrics(counts, {("t.learning.caliper.v1", 0): 4, ("t.learning.caliper.v1", 1): 0}, {"pairs": 2}, latency, ready=False)
    samples = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    assert samples['xpbank_records_in_total{topic="learning.caliper.v1"}'] == 3
    assert samples["xpbank_clamped_seconds_total"] == 1.5
    assert samples["xpbank_awards_total"] == 2
    assert samples['xpbank_consumer_lag{topic="t.learning.caliper.v1",partition="0"}'] == 4
    assert samples['xpbank_consumer_lag{topic="t.learning.caliper.v1",partition="1"}'] == 0
    assert samples['xpbank_output_latency_seconds_bucket{le="1"}'] == 1  # cumulative buckets
    assert samples['xpbank_output_latency_seconds_bucket{le="5"}'] == 1
    assert samples['xpbank_output_latency_seconds_bucket{le="10"}'] == 2
    assert samples['xpbank_output_latency_seconds_bucket{le="+Inf"}'] == 2
    assert (samples["xpbank_output_latency_seconds_count"], samples["xpbank_output_latency_seconds_sum"]) == (2, 10)
    assert samples['xpbank_table_keys{table="pairs"}'] == 2
    assert samples["xpbank_worker_ready"] == 0
    for reason in REASONS:
        assert samples[f'xpbank_dead_letters_total{{reason="{reason}"}}'] == simulator.counts.get(f"dead_letters:{reason}", 0)
    assert samples['xpbank_dead_letters_total{reason="malformed_json"}'] == 1


def test_on_a_cluster_every_key_of_a_learner_and_its_guard_share_one_hash_slot():
    _, values = seed002()
    keys = Keys("p:", cluster=True)
    fact = next(v for v in values if isinstance(v, XpFact))
    [decided] = [v for v in values if isinstance(v, BankingDecided)]
    attempt = next(v for v in values if isinstance(v, AttemptOpened))
    planned = [plan_fact(keys, fact), plan_attempt(keys, attempt, 3), plan_decision(keys, decided, 4)]
    learner = [k for upsert in planned for k in upsert.keys]
    assert all("{u1}" in k for k in learner) and planned[0].keys[0] == f"p:fact:{{u1}}:{fact.factId}"
    assert {key_slot(k) for k in learner} == {key_slot(keys.slot_meta(learner[0]))} == {key_slot("u1")}
    assert keys.slot_meta(learner[0]) in keys.slot_metas() and len(keys.slot_metas()) == 16384
    assert {keys.total(u) for u in ("u1", "u2")} != {keys.total("u1")}
    one = Keys("p:")  # one Redis: the keys of before, one meta guarding them all
    assert plan_fact(one, fact).keys[:2] == (f"p:fact:{fact.factId}", "p:xp:u1")
    assert one.slot_meta("p:xp:u1") == "p:meta" and one.slot_metas() == ["p:meta"] and one.shard(0) == ("p:meta", "p:positions")


def test_hash_slots_are_redis_cluster_s_and_every_slot_has_a_tag_that_lands_there():
    assert key_slot("123456789") == 0x31C3 % 16384  # the CRC16 check value of the cluster specification
    assert key_slot("{user1000}.following") == key_slot("{user1000}.followers") == key_slot("user1000")
    assert (key_slot("somekey"), key_slot("foo{}{bar}")) == (11058, 8363)  # as CLUSTER KEYSLOT: an empty tag hashes all
    assert key_slot("foo{{bar}}zap") == key_slot("{bar")
    assert all(key_slot(f"x:{{{slot_tag(slot)}}}") == slot for slot in range(16384))
    braced = Keys("a{b}c:", cluster=True)  # a prefix with a tag: every key in its slot (one shard, still correct)
    assert {key_slot(k) for k in (braced.total("u1"), braced.total("u2"), braced.slot_meta(braced.total("u1")))} == {
        key_slot("b")}


def test_a_rebuild_keeps_the_metas_and_the_lock_only():
    keys = Keys("p:", cluster=True)
    kept = [keys.meta, keys.rebuild_lock, keys.slot_meta(keys.total("u1")), keys.shard(5)[0]]
    assert all(keys.kept_by_clear(k.encode()) for k in kept)
    assert not any(keys.kept_by_clear(k.encode()) for k in (keys.total("meta"), keys.shard(5)[1], keys.positions))
