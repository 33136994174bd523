"""The active-attempt pointer per (user, exercise) (SPEC §3.2) and exercise XP on
finalize (§3.3). xpbank owns the attempt number; nothing re-derives it."""

from __future__ import annotations

from typing import NamedTuple

from xpbank.core.curriculum import locate
from xpbank.core.exercise_xp import MASTERY_ACCURACY, accuracy_of, exercise_xp
from xpbank.core.ids import attempt_completed_id, attempt_output_id, exercise_fact_id, mastery_id
from xpbank.core.outcome import NOTHING, Outcome, counted, rejected
from xpbank.core.rules import Rules
from xpbank.contract.events import (
    AnswerSubmitted,
    AttemptFinalized,
    AttemptReset,
    AttemptStarted,
    CourseUpserted,
    ExerciseMastered,
    QuestionReported,
    QuestionSkipped,
)
from xpbank.contract.outputs import AttemptCompleted, AttemptDiscarded, AttemptOpened, AttemptProgressed, XpFact


class OpenAttempt(NamedTuple):
    number: int
    total_questions: int | None = None
    answers: tuple[tuple[str, bool], ...] = ()  # first answer per question; a skip is False
    reported: tuple[str, ...] = ()

    def answered(self, question: str) -> bool:
        return any(q == question for q, _ in self.answers)


class CompletedAttempt(NamedTuple):
    number: int
    correct: int
    total: int
    accuracy: float
    exercise_xp: int
    mastered: bool
    completed_by: str


class AttemptState(NamedTuple):
    completed: int = 0
    mastered_before: bool = False  # a finalized attempt reached 80 %: no more XP (no farming)
    open: OpenAttempt | None = None
    last_completed: CompletedAttempt | None = None
    seen: frozenset[str] = frozenset()

    @property
    def current_number(self) -> int:
        """The open attempt's number, or the one the next event would open."""
        return self.open.number if self.open else self.completed + 1


EMPTY = AttemptState()


def apply_submission(
    state: AttemptState, event, course: CourseUpserted | None, rules: Rules
) -> tuple[AttemptState, Outcome]:
    """One submission (already schema-checked) against the (user, exercise) state."""
    if event.id in state.seen:
        return state, counted("duplicates")
    named = event.attempt
    if isinstance(event, AttemptFinalized) and named is not None and named <= state.completed:
        return _seen(state, event), counted("noop_finalize")
    if named is not None and named != state.current_number:
        return state, rejected(
            "stale_attempt", f"attempt {named} but the current attempt is {state.current_number}", event.id
        )
    if isinstance(event, AttemptFinalized):
        return _finalize(state, event, course, rules)
    if isinstance(event, AttemptReset):
        return _reset(state, event, rules)
    state, opened = _ensure_open(state, event, rules)
    before = attempt = state.open
    assert attempt is not None
    if isinstance(event, AnswerSubmitted) and not attempt.answered(event.questionId):
        attempt = attempt._replace(answers=(*attempt.answers, (event.questionId, event.correct)))
    elif isinstance(event, QuestionSkipped) and not attempt.answered(event.questionId):
        attempt = attempt._replace(answers=(*attempt.answers, (event.questionId, False)))
    elif isinstance(event, QuestionReported) and event.questionId not in attempt.reported:
        attempt = attempt._replace(reported=(*attempt.reported, event.questionId))
    if attempt is not before:
        opened += Outcome(outputs=(_progressed(attempt, event, rules),))
    return _seen(state._replace(open=attempt), event), opened


def progress(attempt: OpenAttempt) -> tuple[int, int, int]:
    """(answered, correct, reported) of an open attempt; reported questions do not count."""
    counted = [ok for q, ok in attempt.answers if q not in attempt.reported]
    return len(counted), sum(counted), len(attempt.reported)


def _progressed(attempt: OpenAttempt, event, rules: Rules) -> AttemptProgressed:
    answered, correct, reported = progress(attempt)
    return AttemptProgressed(
        id=attempt_output_id(
            "attempt-progressed", event.userSourcedId, event.exerciseSourcedId, attempt.number, rules.generation, event.id
        ),
        generation=rules.generation,
        userSourcedId=event.userSourcedId,
        exerciseSourcedId=event.exerciseSourcedId,
        courseSourcedId=event.courseSourcedId,
        attempt=attempt.number,
        answered=answered,
        correct=correct,
        reported=reported,
        totalQuestions=attempt.total_questions,
        sourceEventId=event.id,
        eventTime=event.eventTime,
    )


def _seen(state: AttemptState, event) -> AttemptState:
    return state._replace(seen=state.seen | {event.id})


def _ensure_open(state: AttemptState, event, rules: Rules) -> tuple[AttemptState, Outcome]:
    if state.open is not None:
        return state, NOTHING
    total = event.totalQuestions if isinstance(event, AttemptStarted) else None
    attempt = OpenAttempt(number=state.completed + 1, total_questions=total)
    opened = AttemptOpened(
        id=attempt_output_id(
            "attempt-opened", event.userSourcedId, event.exerciseSourcedId, attempt.number, rules.generation, event.id
        ),
        generation=rules.generation,
        userSourcedId=event.userSourcedId,
        exerciseSourcedId=event.exerciseSourcedId,
        courseSourcedId=event.courseSourcedId,
        attempt=attempt.number,
        totalQuestions=total,
        sourceEventId=event.id,
        eventTime=event.eventTime,
    )
    return state._replace(open=attempt), Outcome(outputs=(opened,))


def _reset(state: AttemptState, event: AttemptReset, rules: Rules) -> tuple[AttemptState, Outcome]:
    if state.open is None:
        return _seen(state, event), counted("noop_reset")
    discarded = AttemptDiscarded(
        id=attempt_output_id(
            "attempt-discarded", event.userSourcedId, event.exerciseSourcedId, state.open.number, rules.generation, event.id
        ),
        generation=rules.generation,
        userSourcedId=event.userSourcedId,
        exerciseSourcedId=event.exerciseSourcedId,
        courseSourcedId=event.courseSourcedId,
        attempt=state.open.number,
        answered=len(state.open.answers),
        sourceEventId=event.id,
        eventTime=event.eventTime,
    )
    # the number is not consumed: the next attempt reuses it
    return _seen(state._replace(open=None), event), Outcome(outputs=(discarded,))


def _finalize(
    state: AttemptState, event: AttemptFinalized, course: CourseUpserted | None, rules: Rules
) -> tuple[AttemptState, Outcome]:
    attempt = state.open
    if attempt is None:
        return _seen(state, event), counted("noop_finalize")
    if course is None:
        return state, rejected("unknown_course", f"course {event.courseSourcedId} is not in the curriculum", event.id)
    placed = locate(course, event.exerciseSourcedId)
    if placed is None:
        return state, rejected(
            "unknown_exercise", f"exercise {event.exerciseSourcedId} is not in course {course.courseSourcedId}", event.id
        )
    record = _score(attempt, event, placed.resource.xp or 0, state.mastered_before)
    new_state = state._replace(
        completed=attempt.number,
        mastered_before=state.mastered_before or record.accuracy >= MASTERY_ACCURACY,
        open=None,
        last_completed=record,
    )
    return _seen(new_state, event), Outcome(outputs=_completion_outputs(record, event, course, rules))


def _score(attempt: OpenAttempt, event: AttemptFinalized, resource_xp: int, mastered_before: bool) -> CompletedAttempt:
    """The attempt as finalized: its accuracy, the XP it earns and whether it masters."""
    counted_answers = [(q, ok) for q, ok in attempt.answers if q not in attempt.reported]
    planned = event.totalQuestions if event.totalQuestions is not None else attempt.total_questions
    # never fewer than the questions answered: a client that declared too few cannot
    # push accuracy past 100 % (SPEC §3.2 as amended)
    total = len(counted_answers) if planned is None else max(planned - len(attempt.reported), len(counted_answers))
    correct = sum(1 for _, ok in counted_answers if ok)
    accuracy = accuracy_of(correct, total)
    xp = exercise_xp(resource_xp, attempt.number, accuracy, mastered_before)
    return CompletedAttempt(
        number=attempt.number, correct=correct, total=total, accuracy=accuracy,
        exercise_xp=xp, mastered=accuracy >= MASTERY_ACCURACY and xp > 0, completed_by=event.id,
    )


def _completion_outputs(
    record: CompletedAttempt, event: AttemptFinalized, course: CourseUpserted, rules: Rules
) -> tuple:
    """AttemptCompleted and the exercise's XpFact, then ExerciseMastered if it masters."""
    user, exercise, generation, number = event.userSourcedId, event.exerciseSourcedId, rules.generation, record.number
    completed = AttemptCompleted(
        id=attempt_completed_id(user, exercise, number, generation),
        generation=generation,
        userSourcedId=user,
        exerciseSourcedId=exercise,
        courseSourcedId=event.courseSourcedId,
        attempt=number,
        correct=record.correct,
        total=record.total,
        accuracy=record.accuracy,
        exerciseXp=record.exercise_xp,
        mastered=record.mastered,
        sourceEventId=event.id,
        eventTime=event.eventTime,
    )
    fact = XpFact(
        factId=exercise_fact_id(user, exercise, number),
        kind="exercise",
        generation=generation,
        revision=1,
        userSourcedId=user,
        email=event.email,
        date=event.eventTime.date(),
        courseSourcedId=event.courseSourcedId,
        subject=course.subject,
        resourceSourcedId=exercise,
        exerciseSourcedId=exercise,
        attempt=number,
        xp=record.exercise_xp,
        eventTime=event.eventTime,
        sources=(event.id,),
    )
    if not record.mastered:
        return completed, fact
    mastery = ExerciseMastered(
        id=mastery_id(user, exercise, number),
        userSourcedId=user,
        exerciseSourcedId=exercise,
        courseSourcedId=event.courseSourcedId,
        attempt=number,
        accuracy=record.accuracy,
        exerciseXp=record.exercise_xp,
        email=event.email,
        eventTime=event.eventTime,
    )
    return completed, fact, mastery
