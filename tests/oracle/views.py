"""What a reader holds once the oracle has run: the current facts (§3.5's consumer
rule), the final awards, the dead letters, an attempt's view and a mastery's banking."""

from __future__ import annotations

from tests.oracle.model import BANKED, DEAD_LETTERS, FACTS, Oracle
from tests.oracle.outputs import utc_text
from tests.oracle.state import minutes_for


def values(oracle: Oracle, topic: str) -> list[dict]:
    return [value for where, value in oracle.outputs if where == topic]


def current_facts(oracle: Oracle) -> dict[str, dict]:
    """§3.5: per factId, the greatest (generation, revision)."""
    facts: dict[str, dict] = {}
    for fact in values(oracle, FACTS):
        held = facts.get(fact["factId"])
        if held is None or (fact["generation"], fact["revision"]) > (held["generation"], held["revision"]):
            facts[fact["factId"]] = fact
    return facts


def xp_by_user(oracle: Oracle) -> dict[str, int]:
    """§3.5: a learner's XP is the sum of `xp` over their current facts."""
    totals: dict[str, int] = {}
    for fact in current_facts(oracle).values():
        totals[fact["userSourcedId"]] = totals.get(fact["userSourcedId"], 0) + fact["xp"]
    return totals


def final_awards(oracle: Oracle) -> dict[str, int]:
    """The highest xp of each awardId (awards never decrease)."""
    awards: dict[str, int] = {}
    for award in values(oracle, BANKED):
        awards[award["awardId"]] = max(awards.get(award["awardId"], 0), award["xp"])
    return awards


def dead_letter_keys(oracle: Oracle) -> list[tuple]:
    """(reason, eventId, offset) of every dead letter, sorted."""
    return sorted((d["reason"], d["eventId"] or "", d["offset"] or 0) for d in values(oracle, DEAD_LETTERS))


def attempt_view(oracle: Oracle, user: str, exercise: str) -> tuple[int, dict]:
    """`GET /users/{user}/exercises/{exercise}/attempt`: the open attempt (reported
    questions not counted), else the last completed one, else 404."""
    state = oracle.exercises.get((user, exercise))
    base = {"userSourcedId": user, "exerciseSourcedId": exercise}
    if state is not None and state.open is not None:
        attempt = state.open
        counted = [ok for q, ok in attempt.answers.items() if q not in attempt.reported]
        return 200, base | {"status": "open", "attempt": attempt.number, "answered": len(counted),
                            "correct": sum(counted), "reported": len(attempt.reported),
                            "totalQuestions": attempt.total_questions}
    if state is not None and state.last is not None:
        done = state.last
        return 200, base | {"status": "completed", "attempt": done.number, "answered": done.total,
                            "correct": done.correct, "total": done.total, "accuracy": done.accuracy,
                            "exerciseXp": done.exercise_xp, "mastered": done.mastered}
    return 404, base | {"status": "none", "nextAttempt": 1}


def banking(oracle: Oracle, user: str, exercise: str) -> dict | None:
    """The last mastery of (user, exercise) and what it banked (§3.4): per resource
    whose award it decided, the credited seconds up to T, their minutes and the xp.
    What was banked, whatever the course has become since."""
    mastery = oracle.masteries.get((user, exercise))
    if mastery is None:
        return None
    awarded = {}
    for (learner, resource), decision in sorted(oracle.decisions.items()):
        if learner == user and decision.mastery.id == mastery.id and decision.xp > 0:
            credited = oracle.credited_up_to(user, resource, mastery.event_time)
            awarded[resource] = {"activeSeconds": credited / 1000, "minutes": minutes_for(credited), "xp": decision.xp}
    return {"masteryEventId": mastery.id, "decidedAt": utc_text(mastery.event_time), "awarded": awarded,
            "total": sum(row["xp"] for row in awarded.values())}
