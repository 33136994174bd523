"""The second oracle (tests/oracle/, SPEC §3 written again without xpbank) against
`xpbank simulate`: on generated classrooms (Hypothesis, derandomized), on every golden
corpus (so the goldens are no longer only snapshots the code wrote), and on the read
views (attempt view, banking explanation) the API serves."""

from __future__ import annotations

import ast
import gzip
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.budget import examples
from tests.builders import at, attempt, course, heartbeat, line, of_type, resource, simulate, submission
from tests.generated_classrooms import classrooms
from tests.oracle import run, run_lines, views
from tests.oracle.records import from_stored
from tests.oracle.state import exercise_xp, minutes_for
from tests.oracle_compare import differences, limits_of
from xpbank.core.explain import explain_banking
from xpbank.core.rules import Rules
from tests.attempt_views import attempt_view

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
# A fixed sequence of examples (derandomized, no example database): the same run each time.
AGREEMENT = settings(max_examples=examples(200), deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def as_json(outputs) -> list[tuple[str, dict]]:
    return [(out.topic, out.value.model_dump(mode="json")) for out in outputs]


def explained(store, user: str, exercise: str) -> dict:
    """simulate's explanation of a mastery in the oracle's terms (awarded rows only)."""
    ref = store.mastery(user, exercise)
    pairs = store.pairs_of(user)
    explanation = explain_banking(user, exercise, ref, store.course(ref.courseSourcedId), pairs)
    awarded = {r.resourceSourcedId: {"activeSeconds": r.activeSeconds, "minutes": r.minutes, "xp": r.decision}
               for r in explanation.resources if r.reason == "awarded"}
    return {"masteryEventId": ref.id, "decidedAt": explanation.model_dump(mode="json")["decidedAt"],
            "awarded": awarded, "total": explanation.total}


def read_views_differ(simulator, oracle) -> list[str]:
    """The attempt views and the masteries' explanations that differ."""
    store, found = simulator.store, []
    keys = set(store.attempt_states) | set(oracle.exercises)
    for user, exercise in sorted(keys):
        want = views.attempt_view(oracle, user, exercise)
        got = attempt_view(user, exercise, store.attempts(user, exercise))
        if got != want:
            found.append(f"attempt view {user} {exercise}: product {got} oracle {want}")
    masteries = set(store.masteries)
    if masteries != set(oracle.masteries):
        found.append(f"masteries: product {sorted(masteries)} oracle {sorted(oracle.masteries)}")
    for user, exercise in sorted(masteries & set(oracle.masteries)):
        want, got = views.banking(oracle, user, exercise), explained(store, user, exercise)
        if got != want:
            found.append(f"banking {user} {exercise}: product {got} oracle {want}")
    return found


@AGREEMENT
@given(classrooms(), st.sampled_from([3600, 3600, 600]), st.sampled_from([60, 60, 25]), st.sampled_from([1, 1, 3]))
def test_the_oracle_and_simulate_make_the_same_decisions_on_generated_classrooms(lines, lateness, unanchored,
                                                                                  generation):
    rules = Rules(lateness_seconds=lateness, max_unanchored_seconds=unanchored, generation=generation)
    outputs, simulator = simulate(lines, rules)
    oracle = run_lines(lines, limits_of(rules))
    assert differences(as_json(outputs), oracle) == []
    assert read_views_differ(simulator, oracle) == []


@pytest.mark.parametrize(("xp_then", "xp_now"), [(0, 3), (3, 0)])
def test_explain_shows_what_the_mastery_banked_after_the_course_changed(xp_then, xp_now):
    """SPEC §5: `explain` says why a mastery banked what it banked. Here the article's xp
    changes after the mastery: its banked fact stays as decided (0 or 2 xp), and the
    explanation must show that, not what the new course would have given."""
    lesson = lambda xp: course("c1", [[resource("a1", 1, "Article", xp), resource("ex1", 2, "Exercise", 2)]])  # noqa: E731
    lines = [lesson(xp_then), heartbeat("u1", "a1", 120, 10), *attempt("u1", "ex1", 100, [True]), lesson(xp_now)]
    outputs, simulator = simulate(lines)
    oracle = run_lines(lines)
    banked = {f.factId: f.xp for f in of_type(outputs, "XpFact") if f.kind == "banked"}
    assert banked == ({"bank:u1:a1": 2} if xp_then else {})  # the decision itself is right
    assert explained(simulator.store, "u1", "ex1") == views.banking(oracle, "u1", "ex1")


@pytest.mark.parametrize("order", ["2", True, " 3 "])
def test_a_sort_order_that_is_not_a_number_is_a_schema_violation(order):
    """SPEC §2.4 and schemas/CourseUpserted.json: `sortOrder` is a number; §3.6: a record
    that breaks the schema is a `schema_violation`, not a course."""
    value = course("c1", [[resource("v1", order, "Video", 5), resource("ex1", 2, "Exercise", 2)]])["value"]
    lines = [line("learning.curriculum.v1", "c1", value, at(-60))]
    assert [d["reason"] for d in views.values(run_lines(lines), "xp.dead-letters.v1")] == ["schema_violation"]
    outputs, _ = simulate(lines)
    assert differences(as_json(outputs), run_lines(lines)) == []


def hostile_ids() -> list[dict]:
    """SPEC §2.5: ids holding `:` and `%` (the pairs ('a:b', 'c') and ('a', 'b:c') meet
    without escaping), ids over the limit or with a control character, an envelope of
    too many events, an over-long sensor and tombstone key."""
    from tests.builders import envelope, mastery, time_spent_event

    long = "x" * 513
    value = course("c:1", [[resource("v:1", 1, "Video", 5), resource("v%1", 2, "Article", 3),
                            resource("c", 3, "Exercise", 2), resource("b:c", 4, "Exercise", 2)]])["value"]
    lines = [line("learning.curriculum.v1", "c:1", value, at(-60)), line("learning.curriculum.v1", long, None, at(-60))]
    for user, exercise in (("a:b", "c"), ("a", "b:c")):
        lines += [heartbeat(user, "v:1", 300, 10, course_id="c:1"), heartbeat(user, "v%1", 300, 11, course_id="c:1")]
        lines += [submission("AttemptStarted", user, exercise, 20, course_id="c:1"),
                  submission("AnswerSubmitted", user, exercise, 21, course_id="c:1", questionId="q", correct=True),
                  submission("AttemptFinalized", user, exercise, 22, course_id="c:1")]
    lines += [submission("AnswerSubmitted", "a", "c", 30, course_id="c:1", questionId="q\x07", correct=True),
              submission("AttemptStarted", long, "c", 31, course_id="c:1"),
              submission("AttemptStarted", "a", "c", 32, sid=long, course_id="c:1"),
              mastery("a", "c", 33, course_id=long),
              envelope("a", [time_spent_event("a", "v:1", 30, 40 + n) for n in range(1001)], 41),
              envelope("a", [time_spent_event("a", "v:1", 30, 50)], 51),
              heartbeat("a", long, 30, 60),
              line("learning.caliper.v1", "a", {"type": "NavigationEvent", "id": "n", "actor": {"id": long}}, at(61))]
    lines[-3]["value"]["sensor"] = long
    return lines


def test_the_oracle_and_simulate_agree_on_identifiers_and_their_limits():
    lines, rules = hostile_ids(), Rules(max_payload_bytes=1 << 20)  # room for 1,001 events
    outputs, simulator = simulate(lines, rules)
    oracle = run_lines(lines, limits_of(rules, identifier_rules=True))
    assert {"exercise:a%3Ab:c:1", "exercise:a:b%3Ac:1", "bank:a%3Ab:v%3A1", "bank:a%3Ab:v%251"} <= set(
        views.current_facts(oracle))
    assert sorted(d["reason"] for d in views.values(oracle, "xp.dead-letters.v1")) == ["schema_violation"] * 9
    assert differences(as_json(outputs), oracle) == []
    assert read_views_differ(simulator, oracle) == []


def golden_outputs(name: str, prefix_of: dict[str, str]) -> dict[str, list[tuple[str, dict]]]:
    """The stored `simulate` outputs of a corpus, per scenario, as (topic, value)."""
    scenarios: dict[str, list] = {}
    current: list = []
    for raw in gzip.decompress((GOLDEN / "expected" / f"{name}.simulate.jsonl.gz").read_bytes()).splitlines():
        doc = orjson.loads(raw)
        if "scenario" in doc:
            current = scenarios.setdefault(doc["scenario"], [])
        elif "topic" in doc:
            current.append((doc["topic"], doc["value"]))
    return scenarios


CORPORA = sorted(p.name.removesuffix(".jsonl.gz") for p in (GOLDEN / "corpora").glob("*.jsonl.gz"))


@pytest.mark.parametrize("name", CORPORA)
def test_the_golden_outputs_are_what_the_oracle_decides(name):
    scenarios = [orjson.loads(raw) for raw in gzip.decompress((GOLDEN / "corpora" / f"{name}.jsonl.gz").read_bytes()).splitlines()]
    stored = golden_outputs(name, {})
    assert len(stored) == len(scenarios) > 0
    for scenario in scenarios:
        prefix = scenario["prefix"]
        produced = [(topic.removeprefix(prefix), value) for topic, value in stored[scenario["name"]]]
        oracle = run([from_stored(doc) for doc in scenario["records"]], limits_of(Rules(**scenario["rules"])), prefix)
        assert differences(produced, oracle) == [], scenario["name"]


# ---- the oracle itself, against SPEC's own numbers ---------------------------------------


@pytest.mark.parametrize(("seconds", "minutes"), [(0, 0), (19.999, 0), (20, 1), (29.999, 1), (30, 1), (89.999, 1),
                                                  (90, 2), (149.999, 2), (150, 3), (3600, 60)])
def test_the_oracles_minutes_follow_the_bucket_table(seconds, minutes):
    assert minutes_for(round(seconds * 1000)) == minutes  # SPEC §3.4.3, seed 004


@pytest.mark.parametrize(("base", "attempt", "correct", "total", "xp"), [
    (2, 1, 5, 5, 3), (2, 1, 4, 5, 2), (2, 1, 3, 5, 0), (4, 2, 5, 5, 3), (4, 2, 4, 5, 2), (3, 3, 5, 5, 1),
    (4, 3, 4, 5, 1), (5, 4, 5, 5, 0), (1, 1, 0, 0, 0)])
def test_the_oracles_exercise_xp_follows_spec_3_3(base, attempt, correct, total, xp):
    assert exercise_xp(base, attempt, correct, total, mastered_before=False) == xp
    assert exercise_xp(base, attempt, correct, total, mastered_before=True) == 0


def test_the_oracle_banks_the_spec_example():
    """SPEC §2.4's course: 5 minutes on the video before mastering ex1 on attempt 1."""
    course = {"type": "CourseUpserted", "courseSourcedId": "c1", "subject": "Math", "units": [
        {"sourcedId": "unit1", "sortOrder": 1, "lessons": [{"sourcedId": "l1", "sortOrder": 1, "resources": [
            {"sourcedId": "v1", "sortOrder": 1, "kind": "Video", "xp": 5, "type": "interactive"},
            {"sourcedId": "a1", "sortOrder": 2, "kind": "Article", "xp": 1},
            {"sourcedId": "ex1", "sortOrder": 3, "kind": "Exercise", "xp": 2}]}]}]}
    lines = [line("learning.curriculum.v1", "c1", course), *[heartbeat("u1", "v1", 50, 60 * n) for n in range(1, 7)],
             heartbeat("u1", "a1", 10, 100), *attempt("u1", "ex1", 1000, [True, True, True])]
    oracle = run_lines(lines)
    assert {fid: f["xp"] for fid, f in views.current_facts(oracle).items()} == {"exercise:u1:ex1:1": 3, "bank:u1:v1": 5}
    assert views.banking(oracle, "u1", "ex1")["awarded"] == {"v1": {"activeSeconds": 300.0, "minutes": 5, "xp": 5}}
    assert views.attempt_view(oracle, "u1", "ex1")[1]["accuracy"] == 100.0


def test_the_oracle_imports_nothing_of_xpbank():
    for path in sorted((ROOT / "tests" / "oracle").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n.split(".")[0] in ("xpbank", "tests") and not n.startswith("tests.oracle")], path
