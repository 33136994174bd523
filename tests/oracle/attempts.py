"""SPEC §3.2 (the attempt pointer) and §3.3 (exercise XP and mastery): the submission
rules of the oracle (`model.Oracle` mixes them in)."""

from __future__ import annotations

from tests.oracle import curriculum, outputs
from tests.oracle.events import Refused, Submission
from tests.oracle.records import MASTERY
from tests.oracle.state import CompletedAttempt, ExerciseState, OpenAttempt, exercise_xp

ATTEMPTS, FACTS = "xp.attempts.v1", "xp.facts.v1"


class AttemptRules:
    """Needs the oracle's `exercises`, `courses`, `limits`, `escape`, `emit` and `dead_letter`."""

    def on_submission(self, event: Submission, record) -> list[dict]:
        """One submission; returns the ExerciseMastered it makes xpbank publish, if any."""
        state = self.exercises.setdefault((event.user, event.exercise), ExerciseState())
        if event.id in state.seen:
            return []  # every submission id is processed once per (user, exercise)
        if event.type == "AttemptFinalized" and event.attempt is not None and event.attempt <= state.completed:
            state.seen.add(event.id)
            return []  # finalizing an attempt already completed is a no-op
        if event.attempt is not None and event.attempt != state.current:
            self.dead_letter(record, Refused("stale_attempt", event.id))  # the state is untouched
            return []
        if event.type == "AttemptFinalized":
            return self.finalize(state, event, record)
        if event.type == "AttemptReset":
            self.reset(state, event)
        else:
            self.answer(state, event)
        state.seen.add(event.id)
        return []

    def attempt_event(self, kind: str, event: Submission, number: int, **fields) -> None:
        """AttemptOpened / AttemptDiscarded / AttemptCompleted (§3.2), without `id` (its
        identity is the product's; compared by content)."""
        self.emit(ATTEMPTS, {
            "type": kind, "generation": self.limits.generation, "userSourcedId": event.user,
            "exerciseSourcedId": event.exercise, "courseSourcedId": event.course, "attempt": number, **fields,
            "sourceEventId": event.id, "eventTime": outputs.utc_text(event.event_time),
        })

    def answer(self, state, event: Submission) -> None:
        """AttemptStarted and the question events: the first event of an attempt opens
        attempt completed + 1; the first answer to a question counts, a skip counts as
        wrong, a report removes the question."""
        if state.open is None:
            total = event.total_questions if event.type == "AttemptStarted" else None
            state.open = OpenAttempt(state.completed + 1, total)
            self.attempt_event("AttemptOpened", event, state.open.number, totalQuestions=total)
        attempt = state.open  # AttemptStarted while open: a no-op (its totalQuestions ignored)
        if event.type == "AnswerSubmitted":
            attempt.answers.setdefault(event.question, event.correct)
        elif event.type == "QuestionSkipped":
            attempt.answers.setdefault(event.question, False)
        elif event.type == "QuestionReported":
            attempt.reported.add(event.question)

    def reset(self, state, event: Submission) -> None:
        """AttemptReset discards the open attempt; its number is not consumed."""
        if state.open is None:
            return  # no open attempt: a no-op
        self.attempt_event("AttemptDiscarded", event, state.open.number, answered=len(state.open.answers))
        state.open = None

    def finalize(self, state, event: Submission, record) -> list[dict]:
        attempt = state.open
        if attempt is None:
            state.seen.add(event.id)
            return []  # no open attempt: a no-op
        course = self.courses.get(event.course)
        if course is None:
            self.dead_letter(record, Refused("unknown_course", event.id))
            return []  # the attempt stays open
        placed = curriculum.find(course.units, event.exercise)
        if placed is None:
            self.dead_letter(record, Refused("unknown_exercise", event.id))
            return []
        counted = {q: ok for q, ok in attempt.answers.items() if q not in attempt.reported}
        declared = event.total_questions if event.total_questions is not None else attempt.total_questions
        total = len(counted) if declared is None else max(declared - len(attempt.reported), len(counted))
        correct = sum(counted.values())
        accuracy = 100 * correct / total if total > 0 else 0.0
        xp = exercise_xp(placed.xp, attempt.number, correct, total, state.mastered_before)
        reached = total > 0 and 100 * correct >= 80 * total
        mastered = reached and xp > 0  # docs/decisions.md: an ExerciseMastered was published
        self.attempt_event("AttemptCompleted", event, attempt.number, correct=correct, total=total,
                           accuracy=accuracy, exerciseXp=xp, mastered=mastered)
        fact_id = outputs.exercise_fact_id(event.user, event.exercise, attempt.number, self.escape)
        self.emit(FACTS, outputs.fact(
            fact_id, "exercise", self.limits.generation, 1, event.user, event.email, event.course, course.subject,
            event.exercise, event.exercise, attempt.number, xp, event.event_time, event.id))
        state.completed, state.open, state.mastered_before = attempt.number, None, state.mastered_before or reached
        state.last = CompletedAttempt(attempt.number, correct, total, accuracy, xp, mastered)
        state.seen.add(event.id)
        if not mastered:
            return []
        mastery = {
            "id": outputs.mastery_id(event.user, event.exercise, attempt.number, self.escape),
            "type": "ExerciseMastered", "userSourcedId": event.user, "exerciseSourcedId": event.exercise,
            "courseSourcedId": event.course, "attempt": attempt.number, "accuracy": accuracy, "exerciseXp": xp,
            "email": event.email, "eventTime": outputs.utc_text(event.event_time),
        }
        self.emit(MASTERY, mastery)
        return [mastery]

