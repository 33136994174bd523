"""Properties over generated classrooms (SPEC §3.4.7, §3.5, §4)."""

from __future__ import annotations

import random
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.budget import examples
from tests.builders import at, attempt, heartbeat, line, of_type, simulate, submission
from xpbank.core.banking import minutes_for
from xpbank.processing.simulate import current_facts

KINDS = ["Article", "Video", "Video", "Article", "Exercise", "Quiz"]
ANSWERS = st.lists(st.sampled_from([True, True, True, True, False]), min_size=1, max_size=5)
SPAN = 2400  # every event time within 40 minutes: no heartbeat is later than the lateness bound


@st.composite
def classrooms(draw):
    """A course (shuffled sort orders) and, per learner, their records in their own order."""
    units, resources = [], []
    for u in range(draw(st.integers(1, 2))):
        lessons = []
        for l in range(draw(st.integers(1, 3))):
            items = []
            for r in range(draw(st.integers(1, 4))):
                rid = f"r{u}{l}{r}"
                kind = draw(st.sampled_from(KINDS))
                xp = draw(st.sampled_from([0, 1, 2, 3, 5, 5]))
                items.append({"sourcedId": rid, "sortOrder": draw(st.integers(0, 9)), "kind": kind, "xp": xp,
                              "type": draw(st.sampled_from(["interactive", None]))})
                resources.append((rid, kind))
            if draw(st.integers(0, 9)) < 7:  # most lessons end with an exercise
                items.append({"sourcedId": f"x{u}{l}", "sortOrder": 10, "kind": "Exercise", "xp": draw(st.integers(1, 4))})
                resources.append((f"x{u}{l}", "Exercise"))
            lessons.append({"sourcedId": f"l{u}{l}", "sortOrder": draw(st.integers(0, 9)), "resources": items})
        units.append({"sourcedId": f"u{u}", "sortOrder": u, "lessons": draw(st.permutations(lessons))})
    curriculum = line("learning.curriculum.v1", "c1", {"type": "CourseUpserted", "courseSourcedId": "c1", "subject": "Math", "units": units}, at(-1))
    passive = [rid for rid, kind in resources if kind != "Exercise"]
    exercises = [rid for rid, kind in resources if kind == "Exercise"]
    learners = {}
    for n in range(draw(st.integers(1, 3))):
        user = f"learner{n}"
        heartbeats, submissions = [], []
        for _ in range(draw(st.integers(0, 12))):
            if passive:
                hb = heartbeat(user, draw(st.sampled_from(passive)), draw(st.sampled_from([5, 15, 25, 45, 70, 130, 400])),
                               draw(st.integers(0, SPAN)), anchored=draw(st.booleans()))
                heartbeats += [hb] * draw(st.sampled_from([1, 1, 2]))  # some redelivered
        for _ in range(draw(st.integers(0, 3))):
            if exercises:
                t = draw(st.integers(0, SPAN))
                ex = draw(st.sampled_from(exercises))
                answers = draw(ANSWERS)
                if draw(st.integers(0, 4)) == 0:
                    submissions += [submission("AnswerSubmitted", user, ex, t, questionId="qx", correct=False),
                                    submission("AttemptReset", user, ex, t + 1)]
                submissions += attempt(user, ex, t + 2, answers)
        learners[user] = {"learning.caliper.v1": heartbeats, "learning.submissions.v1": submissions}
    return curriculum, learners


def interleave(curriculum, learners, rng: random.Random) -> list[dict]:
    """A random merge of the per-(topic, user) sequences, each kept in order."""
    queues = [list(seq) for topics in learners.values() for seq in topics.values() if seq]
    merged = [curriculum]
    while queues:
        queue = rng.choice(queues)
        merged.append(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return merged


def final_facts(lines) -> dict[str, tuple]:
    outputs, _ = simulate(lines)
    # revision counts the changes a fact went through, which depends on arrival order
    return {fid: f.model_dump(exclude={"revision"}) for fid, f in current_facts(outputs).items()}


PROPERTY = settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(classrooms(), st.randoms(use_true_random=False), st.randoms(use_true_random=False))
def test_any_interleaving_that_keeps_per_topic_per_user_order_gives_identical_facts(classroom, rng_a, rng_b):
    curriculum, learners = classroom
    assert final_facts(interleave(curriculum, learners, rng_a)) == final_facts(interleave(curriculum, learners, rng_b))


@PROPERTY
@given(classrooms(), st.randoms(use_true_random=False))
def test_feeding_every_record_twice_gives_the_same_facts_as_once(classroom, rng):
    lines = interleave(*classroom, rng)
    once, _ = simulate(lines)
    doubled, _ = simulate([record for record in lines for _ in range(2)])
    replayed, _ = simulate(lines + lines)
    assert current_facts(doubled) == current_facts(once) == current_facts(replayed)


@PROPERTY
@given(classrooms(), st.randoms(use_true_random=False))
def test_xp_is_the_sum_of_exercise_and_banked_facts_and_matches_an_independent_oracle(classroom, rng):
    lines = interleave(*classroom, rng)
    outputs, _ = simulate(lines)
    facts = current_facts(outputs)
    per_user = defaultdict(int)
    for fact in facts.values():
        per_user[fact.userSourcedId] += fact.xp
    from_streams = defaultdict(int)
    for done in of_type(outputs, "AttemptCompleted"):
        from_streams[done.userSourcedId] += done.exerciseXp
    for award in of_type(outputs, "BankedXpAwarded"):
        from_streams[award.userSourcedId] += award.deltaXp
    assert {u: x for u, x in per_user.items() if x} == {u: x for u, x in from_streams.items() if x}
    # oracle: a banked fact is min(minutes of the pair's credited time up to T, cap)
    for fact in facts.values():
        if fact.kind != "banked":
            continue
        award = next(a for a in of_type(outputs, "BankedXpAwarded") if a.awardId == fact.factId and a.xp == fact.xp)
        seen, credited = set(), 0
        for record in lines:
            value = record["value"]
            if record["topic"] == "learning.caliper.v1" and value["id"] not in seen and value["actor"]["id"].endswith(
                "/" + fact.userSourcedId) and value["object"]["activity"]["id"].endswith("/" + fact.resourceSourcedId):
                seen.add(value["id"])
                if value["eventTime"] <= at_str(fact.eventTime):
                    item = value["generated"]["items"][0]
                    credited += min(item["value"], 60 if "startDate" not in item else item["value"] + 1) * 1000
        assert fact.xp == min(minutes_for(int(credited)), award.expectedXp) > 0


def at_str(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


QUESTIONS = [f"q{i}" for i in range(6)]
SUBMISSION_STEPS = st.one_of(
    st.tuples(st.just("AttemptStarted"), st.one_of(st.none(), st.integers(0, 8))),
    st.tuples(st.just("AnswerSubmitted"), st.sampled_from(QUESTIONS), st.booleans()),
    st.tuples(st.just("QuestionSkipped"), st.sampled_from(QUESTIONS)),
    st.tuples(st.just("QuestionReported"), st.sampled_from(QUESTIONS)),
    st.tuples(st.just("AttemptFinalized"), st.one_of(st.none(), st.integers(0, 8))),
    st.tuples(st.just("AttemptReset")),
)


@PROPERTY
@given(st.lists(SUBMISSION_STEPS, max_size=30))
def test_accuracy_stays_between_0_and_100_for_any_submission_sequence(steps):
    curriculum = line("learning.curriculum.v1", "c1", {"type": "CourseUpserted", "courseSourcedId": "c1", "units": [
        {"sourcedId": "u", "sortOrder": 1, "lessons": [{"sourcedId": "l", "sortOrder": 1, "resources": [
            {"sourcedId": "ex1", "sortOrder": 1, "kind": "Exercise", "xp": 4}]}]}]}, at(-1))
    lines = [curriculum]
    for t, (kind, *args) in enumerate(steps):
        fields = {}
        if kind in ("AttemptStarted", "AttemptFinalized") and args[0] is not None:
            fields["totalQuestions"] = args[0]
        elif kind == "AnswerSubmitted":
            fields = {"questionId": args[0], "correct": args[1]}
        elif kind in ("QuestionSkipped", "QuestionReported"):
            fields = {"questionId": args[0]}
        lines.append(submission(kind, "u1", "ex1", t, sid=f"s{t}", **fields))
    outputs, _ = simulate(lines)
    for done in of_type(outputs, "AttemptCompleted"):
        assert 0 <= done.accuracy <= 100
        assert 0 <= done.correct <= done.total or done.total == 0
        assert done.exerciseXp <= 5  # base 4 with the 1.25 bonus, never more


def window_of(units: list[dict], exercise: str) -> list[str]:
    """SPEC §3.4.1 written again, independently of xpbank.core.curriculum: the eligible
    passive resources strictly between the previous exercise and this one in its unit
    (equal sort orders are ordered by lesson, then resource sourcedId: docs/decisions.md)."""
    for unit in units:
        placed = [((lesson["sortOrder"], r["sortOrder"], lesson["sourcedId"], r["sourcedId"]), r)
                  for lesson in unit["lessons"] for r in lesson["resources"]]
        keys = [key for key, r in placed if r["sourcedId"] == exercise]
        if keys:
            previous = max((key for key, r in placed if r["kind"] == "Exercise" and key < keys[0]), default=None)
            return [r["sourcedId"] for key, r in placed if key < keys[0] and (previous is None or key > previous)
                    and r["kind"] in ("Article", "Video") and (r.get("xp") or 0) > 0]
    return []


def credited_ms(lines: list[dict], user: str, resource: str, until: str) -> int:
    """Credited milliseconds of a learner's distinct heartbeats on a resource up to `until`."""
    seen, total = set(), 0
    for record in lines:
        value = record["value"]
        if (record["topic"] == "learning.caliper.v1" and value["id"] not in seen
                and value["actor"]["id"].endswith("/" + user) and value["object"]["activity"]["id"].endswith("/" + resource)
                and value["eventTime"] <= until):
            seen.add(value["id"])
            item = value["generated"]["items"][0]
            total += int(min(item["value"], item["value"] + 1 if "startDate" in item else 60) * 1000)
    return total


@PROPERTY
@given(classrooms(), st.randoms(use_true_random=False))
def test_every_mastery_whose_window_holds_20_seconds_yields_a_banked_fact(classroom, rng):
    """An expectation that notices a missing fact: computed from the records, not from
    the facts that were produced."""
    curriculum, learners = classroom
    lines = interleave(curriculum, learners, rng)
    outputs, _ = simulate(lines)
    banked = {fid for fid, f in current_facts(outputs).items() if f.kind == "banked" and f.xp > 0}
    units = curriculum["value"]["units"]
    for mastery in of_type(outputs, "ExerciseMastered"):
        until = at_str(mastery.eventTime)
        for resource in window_of(units, mastery.exerciseSourcedId):
            if credited_ms(lines, mastery.userSourcedId, resource, until) >= 20_000:
                assert f"bank:{mastery.userSourcedId}:{resource}" in banked
