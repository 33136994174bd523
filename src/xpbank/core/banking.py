"""Banking (SPEC §3.4): on a mastery at T, each eligible passive resource of the window
is awarded min(minutes spent up to T, xp). A resource holds its decision next to its
read time, so a late heartbeat re-decides it with the same T and awards never decrease."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from xpbank.core.curriculum import Placed, banking_window
from xpbank.core.ids import bank_award_id, bank_output_id
from xpbank.core.outcome import NOTHING, Outcome, counted, rejected
from xpbank.core.read_time import seconds_up_to
from xpbank.core.rules import Rules
from xpbank.contract.times import Time, to_micros
from xpbank.contract.events import CourseUpserted, ExerciseMastered
from xpbank.contract.outputs import BankedXpAwarded, XpFact


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class BankDecision(NamedTuple):
    """The mastery that decided a resource, and what it has awarded so far."""

    decided_at: datetime  # UTC
    mastery_event_id: str
    exercise: str
    attempt: int
    course: str
    subject: str | None
    email: str | None
    resource_kind: str
    expected_xp: int
    xp: int = 0  # 0: decided but nothing awarded (still eligible for a later mastery)
    revision: int = 0

    @property
    def decided_us(self) -> int:
        return to_micros(self.decided_at)


class PairState(NamedTuple):
    """Everything xpbank knows about one (user, resource)."""

    entries: bytes = b""  # the read time (core/read_time.py)
    decision: BankDecision | None = None
    # exercises whose banking evidence shows this pair's time: a late heartbeat (before
    # their T) publishes their evidence again
    explains: tuple[str, ...] = ()

    @property
    def banked(self) -> bool:
        return self.decision is not None and self.decision.xp > 0


EMPTY_PAIR = PairState()


class MasteryRef(Frozen):
    """The latest mastery of a (user, exercise), kept so `explain` can show its window."""

    id: str
    eventTime: Time
    attempt: int
    courseSourcedId: str
    email: str | None = None


def minutes_for(credited_ms: int) -> int:
    """<20 s -> 0; 20-29 s -> 1; otherwise floor(s/60 + 0.5), in exact integers."""
    if credited_ms < 20_000:
        return 0
    if credited_ms < 30_000:
        return 1
    return (credited_ms + 30_000) // 60_000


def award_for(entries: bytes, decided_at: datetime, expected_xp: int) -> tuple[int, int, int]:
    """(credited ms up to T, minutes, award) for one resource."""
    credited = seconds_up_to(entries, to_micros(decided_at))
    minutes = minutes_for(credited)
    return credited, minutes, min(minutes, expected_xp)


def window_resources(course: CourseUpserted | None, exercise: str) -> tuple[str, ...]:
    """The resources whose pairs a mastery of `exercise` reads and its evidence shows:
    every resource of its window, eligible or not (none if the exercise is unknown)."""
    window = banking_window(course, exercise) if course is not None else None
    return tuple(p.resource.sourcedId for p in window.between) if window else ()


def bank_mastery(
    pairs: dict[str, PairState], mastery: ExerciseMastered, course: CourseUpserted | None, rules: Rules
) -> tuple[dict[str, PairState], Outcome]:
    """Decide every eligible resource of the mastery's window. Returns changed pairs."""
    if course is None:
        return {}, rejected("unknown_course", f"course {mastery.courseSourcedId} is not in the curriculum", mastery.id)
    window = banking_window(course, mastery.exerciseSourcedId)
    if window is None:
        return {}, rejected(
            "unknown_exercise", f"exercise {mastery.exerciseSourcedId} is not in course {course.courseSourcedId}", mastery.id
        )
    changed: dict[str, PairState] = {}
    outcome = counted("curriculum_anomalies", len(window.anomalies)) if window.anomalies else NOTHING
    for placed in window.eligible:
        rid = placed.resource.sourcedId
        pair = pairs.get(rid, EMPTY_PAIR)
        if pair.banked:
            outcome += counted("already_banked")
            continue
        decided = pair._replace(decision=_decision(mastery, course, placed, pair.decision))
        changed[rid], awarded = redecide(decided, mastery.userSourcedId, rid, rules)
        outcome += awarded
    exercise = mastery.exerciseSourcedId
    for placed in window.between:  # every pair the evidence shows follows this exercise
        rid = placed.resource.sourcedId
        pair = changed.get(rid) or pairs.get(rid, EMPTY_PAIR)
        if exercise not in pair.explains:
            changed[rid] = pair._replace(explains=(*pair.explains, exercise))
    return changed, outcome


def _decision(mastery: ExerciseMastered, course: CourseUpserted, placed: Placed, prior: BankDecision | None) -> BankDecision:
    return BankDecision(
        decided_at=mastery.eventTime,
        mastery_event_id=mastery.id,
        exercise=mastery.exerciseSourcedId,
        attempt=mastery.attempt,
        course=mastery.courseSourcedId,
        subject=course.subject,
        email=mastery.email,
        resource_kind=placed.resource.kind,
        expected_xp=placed.resource.xp or 0,
        revision=prior.revision if prior else 0,
    )


def redecide(pair: PairState, user: str, resource: str, rules: Rules) -> tuple[PairState, Outcome]:
    """Award what the read time up to the decision's T is worth, if that is more than
    already awarded: a new revision of the same award and fact."""
    decision = pair.decision
    if decision is None:
        return pair, NOTHING
    credited, minutes, award = award_for(pair.entries, decision.decided_at, decision.expected_xp)
    if award <= decision.xp:
        return pair, NOTHING
    revision = decision.revision + 1
    award_id = bank_award_id(user, resource)
    awarded = BankedXpAwarded(
        id=bank_output_id(user, resource, rules.generation, revision),
        awardId=award_id,
        generation=rules.generation,
        revision=revision,
        userSourcedId=user,
        email=decision.email,
        courseSourcedId=decision.course,
        resourceSourcedId=resource,
        resourceKind=decision.resource_kind,
        exerciseSourcedId=decision.exercise,
        attempt=decision.attempt,
        masteryEventId=decision.mastery_event_id,
        activeSeconds=credited / 1000,
        minutes=minutes,
        expectedXp=decision.expected_xp,
        xp=award,
        deltaXp=award - decision.xp,
        eventTime=decision.decided_at,
    )
    fact = XpFact(
        factId=award_id,
        kind="banked",
        generation=rules.generation,
        revision=revision,
        userSourcedId=user,
        email=decision.email,
        date=decision.decided_at.date(),
        courseSourcedId=decision.course,
        subject=decision.subject,
        resourceSourcedId=resource,
        exerciseSourcedId=decision.exercise,
        attempt=decision.attempt,
        xp=award,
        eventTime=decision.decided_at,
        sources=(decision.mastery_event_id,),
    )
    new_decision = decision._replace(xp=award, revision=revision)
    return pair._replace(decision=new_decision), Outcome(outputs=(awarded, fact))


def mastery_ref(mastery: ExerciseMastered) -> MasteryRef:
    return MasteryRef(
        id=mastery.id,
        eventTime=mastery.eventTime,
        attempt=mastery.attempt,
        courseSourcedId=mastery.courseSourcedId,
        email=mastery.email,
    )
