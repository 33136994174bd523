"""Banking rules as the seeds describe them (../shared/seeds/000, 002, 004)."""

from __future__ import annotations

import pytest

from tests.builders import attempt, course, facts_of, heartbeat, mastery, of_type, resource, simulate
from xpbank.core.banking import minutes_for
from xpbank.core.explain import explain_banking


# ---- Seed 004: the bucket table ----------------------------------------------

@pytest.mark.parametrize(
    ("seconds", "minutes"),
    [(0, 0), (19, 0), (19.999, 0), (20, 1), (29, 1), (29.999, 1), (30, 1), (89, 1), (89.999, 1),
     (90, 2), (149, 2), (150, 3), (209, 3), (210, 4), (269, 4), (270, 5), (3600, 60)],
)
def test_bucket_table(seconds, minutes):
    assert minutes_for(round(seconds * 1000)) == minutes


def passive_course(kind: str, xp: int) -> dict:
    return course("c1", [[resource("r1", 1, kind, xp), resource("ex1", 2, "Exercise", 2)]])


def banked_for(kind: str, xp: int, seconds: float) -> int:
    lines = [passive_course(kind, xp), heartbeat("u1", "r1", seconds, 100), mastery("u1", "ex1", 1000)]
    return facts_of(lines).get("bank:u1:r1", 0)


@pytest.mark.parametrize(("seconds", "award"), [(20, 1), (45, 1), (150, 1)])
def test_scenario_1_article_xp_1(seconds, award):
    assert banked_for("Article", 1, seconds) == award


@pytest.mark.parametrize(("seconds", "award"), [(25, 1), (35, 1), (89, 1), (95, 2), (200, 2)])
def test_scenario_2_article_xp_2(seconds, award):
    assert banked_for("Article", 2, seconds) == award


@pytest.mark.parametrize(
    ("seconds", "award"), [(19, 0), (20, 1), (29, 1), (30, 1), (89, 1), (90, 2), (149, 2), (150, 3),
                           (209, 3), (210, 4), (269, 4), (270, 5), (900, 5)],
)
def test_scenario_3_video_xp_5(seconds, award):
    assert banked_for("Video", 5, seconds) == award


def test_scenario_4_multiple_resources_each_get_their_own_award():
    lines = [
        course("c1", [[resource("v1", 1, "Video", 5), resource("a1", 2, "Article", 2), resource("ex1", 3, "Exercise", 2)]]),
        heartbeat("u1", "v1", 60, 100),
        heartbeat("u1", "v1", 60, 200),
        heartbeat("u1", "a1", 100, 300),
        mastery("u1", "ex1", 1000),
    ]
    outputs, _ = simulate(lines)
    awards = {a.resourceSourcedId: a.xp for a in of_type(outputs, "BankedXpAwarded")}
    assert awards == {"v1": 2, "a1": 2}
    assert facts_of(lines) == {"bank:u1:v1": 2, "bank:u1:a1": 2}


def test_scenario_5_previously_banked_resource_is_skipped():
    lines = [
        passive_course("Video", 5),
        heartbeat("u1", "r1", 60, 100),
        mastery("u1", "ex1", 1000, mid="urn:uuid:00000000-0000-4000-8000-000000000001"),
        heartbeat("u1", "r1", 600, 2000),
        mastery("u1", "ex1", 3000, mid="urn:uuid:00000000-0000-4000-8000-000000000002"),
    ]
    outputs, _ = simulate(lines)
    assert [a.xp for a in of_type(outputs, "BankedXpAwarded")] == [1]
    assert facts_of(lines) == {"bank:u1:r1": 1}


# ---- Seed 002: facts are atomic ---------------------------------------------

def test_seed_002_video_article_exercise_give_three_atomic_facts_totalling_9():
    lines = [
        course("c1", [[resource("v1", 1, "Video", 5), resource("a1", 2, "Article", 1), resource("ex1", 3, "Exercise", 2)]]),
        heartbeat("u1", "v1", 300, 300),
        heartbeat("u1", "a1", 60, 360),
        *attempt("u1", "ex1", 400, [True, True, True]),
    ]
    facts = facts_of(lines)
    assert facts == {"exercise:u1:ex1:1": 3, "bank:u1:v1": 5, "bank:u1:a1": 1}
    assert sum(facts.values()) == 9
    outputs, _ = simulate(lines)
    exercise_fact = next(f for f in of_type(outputs, "XpFact") if f.kind == "exercise")
    assert exercise_fact.xp == 3  # never includes the banked 6


# ---- Seed 000: the incidents, as event logs ---------------------------------

def window_course() -> dict:
    return course("c1", [[resource("v1", 1, "Video", 5), resource("a1", 2, "Article", 3), resource("ex1", 3, "Exercise", 2)]])


def test_heartbeats_arriving_after_the_mastery_still_bank_as_a_new_revision():
    lines = [
        window_course(),
        heartbeat("u1", "v1", 40, 100),               # 1 minute before the mastery
        mastery("u1", "ex1", 1000),
        heartbeat("u1", "v1", 200, 900),              # arrives late, happened before T
    ]
    outputs, _ = simulate(lines)
    awards = [(a.revision, a.xp, a.deltaXp) for a in of_type(outputs, "BankedXpAwarded")]
    assert awards == [(1, 1, 1), (2, 4, 3)]
    assert facts_of(lines) == {"bank:u1:v1": 4}


def test_a_late_heartbeat_after_a_zero_decision_awards_revision_1():
    lines = [window_course(), mastery("u1", "ex1", 1000), heartbeat("u1", "a1", 90, 500)]
    outputs, _ = simulate(lines)
    assert [(a.revision, a.xp) for a in of_type(outputs, "BankedXpAwarded")] == [(1, 2)]


def test_redelivered_records_never_award_twice():
    lines = [window_course(), heartbeat("u1", "v1", 120, 100), mastery("u1", "ex1", 1000)]
    once, _ = simulate(lines)
    twice, _ = simulate(lines + lines[1:])
    assert len(of_type(twice, "BankedXpAwarded")) == len(of_type(once, "BankedXpAwarded")) == 1
    assert facts_of(lines + lines[1:]) == facts_of(lines) == {"bank:u1:v1": 2}


def test_an_award_of_zero_never_blocks_a_later_award():
    lines = [
        window_course(),
        heartbeat("u1", "v1", 10, 100),
        mastery("u1", "ex1", 1000, mid="urn:uuid:00000000-0000-4000-8000-00000000000a"),  # 10 s: award 0
        heartbeat("u1", "v1", 120, 2000),
        mastery("u1", "ex1", 3000, mid="urn:uuid:00000000-0000-4000-8000-00000000000b"),
    ]
    assert facts_of(lines) == {"bank:u1:v1": 2}


def test_passive_resource_without_interactive_type_is_banked_and_reported():
    lines = [
        course("c1", [[resource("a1", 1, "Article", 2, interactive=False), resource("ex1", 2, "Exercise", 2)]]),
        heartbeat("u1", "a1", 120, 100),
        mastery("u1", "ex1", 1000),
    ]
    outputs, simulator = simulate(lines)
    assert facts_of(lines) == {"bank:u1:a1": 2}
    assert simulator.counts["curriculum_anomalies"] == 1


def test_passive_resource_with_zero_or_missing_xp_is_not_eligible_and_reported():
    lines = [
        course("c1", [[resource("a1", 1, "Article", 0), resource("v1", 2, "Video"), resource("ex1", 3, "Exercise", 2)]]),
        heartbeat("u1", "a1", 120, 100),
        heartbeat("u1", "v1", 120, 110),
        mastery("u1", "ex1", 1000),
    ]
    outputs, simulator = simulate(lines)
    assert facts_of(lines) == {}
    assert simulator.counts["curriculum_anomalies"] == 2


def test_time_spent_after_the_mastery_does_not_count_for_it():
    lines = [window_course(), heartbeat("u1", "v1", 60, 100), mastery("u1", "ex1", 1000), heartbeat("u1", "v1", 600, 1700)]
    assert facts_of(lines) == {"bank:u1:v1": 1}


def test_window_starts_after_the_previous_exercise_and_ignores_other_units_and_kinds():
    lines = [
        course("c1", [
            [resource("v0", 1, "Video", 5), resource("ex0", 2, "Exercise", 2)],
            [resource("q1", 1, "Quiz", 3), resource("a1", 2, "Article", 2), resource("ex1", 3, "Exercise", 2),
             resource("v9", 4, "Video", 5)],
        ]),
        *[heartbeat("u1", rid, 120, 100 + i) for i, rid in enumerate(["v0", "q1", "a1", "v9"])],
        mastery("u1", "ex1", 1000),
    ]
    assert facts_of(lines) == {"bank:u1:a1": 2}


def test_window_follows_sort_orders_not_the_order_of_the_json_lists():
    lines = [
        course("c1", [[resource("ex1", 3, "Exercise", 2), resource("a1", 2, "Article", 2), resource("ex0", 1, "Exercise", 2)]]),
        heartbeat("u1", "a1", 120, 100),
        mastery("u1", "ex1", 1000),
        mastery("u1", "ex0", 1001),
    ]
    assert facts_of(lines) == {"bank:u1:a1": 2}


def test_credit_guard_clamps_anchored_and_unanchored_items():
    lines = [
        window_course(),
        heartbeat("u1", "v1", 600, 100, anchored=False),  # unanchored: at most 60 s
        mastery("u1", "ex1", 1000),
    ]
    outputs, simulator = simulate(lines)
    assert facts_of(lines) == {"bank:u1:v1": 1}
    assert simulator.counts["clamped_ms"] == 540_000


def test_every_accepted_mastery_publishes_its_evidence_and_a_late_heartbeat_publishes_it_again():
    lines = [
        course("c1", [[resource("v1", 1, "Video", 5), resource("q1", 2, "Quiz", 3), resource("ex1", 3, "Exercise", 2)]]),
        heartbeat("u1", "v1", 120, 10),
        mastery("u1", "ex1", 200),
        heartbeat("u1", "v1", 120, 150),  # late: before T, after the decision
        heartbeat("u1", "q1", 60, 160),  # a resource the evidence shows, though not eligible
        heartbeat("u1", "v1", 60, 300),  # after T: the evidence does not change
    ]
    outputs, simulator = simulate(lines)
    decided = of_type(outputs, "BankingDecided")
    assert [d.masteryEventId for d in decided] == [lines[2]["value"]["id"]] * 3
    rows = [{r.resourceSourcedId: (r.activeSeconds, r.decision, r.reason) for r in d.resources} for d in decided]
    assert rows == [{"v1": (120.0, 2, "awarded"), "q1": (0.0, 0, "not passive")},
                    {"v1": (240.0, 4, "awarded"), "q1": (0.0, 0, "not passive")},
                    {"v1": (240.0, 4, "awarded"), "q1": (60.0, 0, "not passive")}]
    assert len({d.id for d in decided}) == 3 and {d.generation for d in decided} == {1}
    ref = simulator.store.mastery("u1", "ex1")
    pairs = simulator.store.pairs_of("u1")
    assert decided[-1].explanation() == explain_banking("u1", "ex1", ref, simulator.store.course("c1"), pairs)


def test_a_rejected_mastery_publishes_no_evidence():
    lines = [course("c1", [[resource("v1", 1, "Video", 5), resource("ex1", 2, "Exercise", 2)]]), mastery("u1", "nope", 100)]
    assert of_type(simulate(lines)[0], "BankingDecided") == []
