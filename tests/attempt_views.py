"""What `GET .../attempt` answers, computed from a worker's attempt state (core's), for
tests that check the read models' views (built by the projector from the attempt
events) against the state the decisions kept. A test helper: the API reads only the
read models."""

from __future__ import annotations

from xpbank.core.attempts import AttemptState, progress
from xpbank.read.projection import completed_view, no_attempt_view, open_view


def attempt_view(user: str, exercise: str, state: AttemptState | None) -> tuple[int, dict]:
    """The open attempt, else the last completed one, else 404."""
    if state is not None and state.open is not None:
        answered, correct, reported = progress(state.open)
        return 200, open_view(user, exercise, state.open.number, answered, correct, reported, state.open.total_questions)
    if state is not None and state.last_completed is not None:
        done = state.last_completed
        return 200, completed_view(user, exercise, done.number, done.correct, done.total, done.accuracy,
                                   done.exercise_xp, done.mastered)
    return 404, no_attempt_view(user, exercise)
