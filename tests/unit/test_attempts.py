"""Attempt numbers (seed 003, SPEC §3.2) and exercise XP (SPEC §3.3)."""

from __future__ import annotations

import pytest

from tests.builders import attempt, course, dead_letters, facts_of, of_type, resource, simulate, submission
from xpbank.core.exercise_xp import exercise_xp, round_half_up

CURRICULUM = course("c1", [[resource("a1", 1, "Article", 2), resource("ex1", 2, "Exercise", 4)]])


def completed(outputs) -> list[tuple[int, int, int, float, int, bool]]:
    return [(c.attempt, c.correct, c.total, c.accuracy, c.exerciseXp, c.mastered) for c in of_type(outputs, "AttemptCompleted")]


# ---- Exercise XP ----------------------------------------------------------------

@pytest.mark.parametrize(
    ("base", "attempt_no", "accuracy", "xp"),
    [(4, 1, 80, 4), (4, 2, 80, 2), (4, 3, 80, 1), (4, 4, 100, 0), (4, 1, 100, 5), (2, 1, 100, 3),
     (4, 1, 79.99, 0), (2, 3, 100, 1), (1, 2, 90, 1), (3, 2, 100, 2), (5, 3, 90, 1), (0, 1, 100, 0)],
)
def test_exercise_xp_decay_bonus_and_rounding(base, attempt_no, accuracy, xp):
    assert exercise_xp(base, attempt_no, accuracy, mastered_before=False) == xp


def test_rounding_is_half_up_not_bankers():
    assert [round_half_up(x) for x in (0.5, 1.5, 2.5, 3.5, 0.625, 1.875)] == [1, 2, 3, 4, 1, 2]
    assert round(2.5) == 2  # what the contract rules out


def test_no_farming_after_a_finalized_attempt_at_80_percent():
    lines = [
        CURRICULUM,
        *attempt("u1", "ex1", 100, [True, True, True, True, False]),   # 80 %: 4 xp
        *attempt("u1", "ex1", 200, [True, True, True, True, True]),    # would be 2*1.25
    ]
    outputs, _ = simulate(lines)
    assert completed(outputs) == [(1, 4, 5, 80.0, 4, True), (2, 5, 5, 100.0, 0, False)]
    assert facts_of(lines) == {"exercise:u1:ex1:1": 4, "exercise:u1:ex1:2": 0}
    assert len(of_type(outputs, "ExerciseMastered")) == 1


def test_failed_attempt_gives_a_zero_fact_and_the_next_attempt_decays():
    lines = [CURRICULUM, *attempt("u1", "ex1", 100, [True, False]), *attempt("u1", "ex1", 200, [True, True])]
    outputs, _ = simulate(lines)
    assert completed(outputs) == [(1, 1, 2, 50.0, 0, False), (2, 2, 2, 100.0, 3, True)]  # 4*0.5*1.25 = 2.5 -> 3


# ---- Seed 003: the attempt pointer ----------------------------------------------

def test_attempt_numbers_never_drift_across_many_attempts():
    lines = [CURRICULUM]
    for n in range(5):
        lines += attempt("u1", "ex1", 100 * (n + 1), [False, False])
    outputs, _ = simulate(lines)
    assert [o.attempt for o in of_type(outputs, "AttemptOpened")] == [1, 2, 3, 4, 5]
    assert [c[0] for c in completed(outputs)] == [1, 2, 3, 4, 5]


def test_submission_for_another_attempt_is_stale_and_leaves_state_untouched():
    stale = submission("AnswerSubmitted", "u1", "ex1", 103, attempt=2, questionId="q9", correct=True)
    lines = [CURRICULUM, submission("AttemptStarted", "u1", "ex1", 100, totalQuestions=2), stale,
             submission("AnswerSubmitted", "u1", "ex1", 104, attempt=1, questionId="q1", correct=True),
             submission("AttemptFinalized", "u1", "ex1", 105)]
    outputs, _ = simulate(lines)
    assert dead_letters(outputs) == [("stale_attempt", stale["value"]["id"])]
    assert completed(outputs) == [(1, 1, 2, 50.0, 0, False)]


def test_first_event_naming_the_wrong_number_is_stale():
    lines = [CURRICULUM, submission("AttemptStarted", "u1", "ex1", 100, attempt=3)]
    outputs, _ = simulate(lines)
    assert [r for r, _ in dead_letters(outputs)] == ["stale_attempt"]
    assert of_type(outputs, "AttemptOpened") == []


def test_reset_discards_answers_and_reuses_the_number():
    lines = [
        CURRICULUM,
        submission("AttemptStarted", "u1", "ex1", 100),
        submission("AnswerSubmitted", "u1", "ex1", 101, questionId="q1", correct=False),
        submission("AttemptReset", "u1", "ex1", 102),
        *attempt("u1", "ex1", 200, [True, True]),
    ]
    outputs, _ = simulate(lines)
    assert [(d.attempt, d.answered) for d in of_type(outputs, "AttemptDiscarded")] == [(1, 1)]
    assert [o.attempt for o in of_type(outputs, "AttemptOpened")] == [1, 1]
    assert completed(outputs) == [(1, 2, 2, 100.0, 5, True)]


def test_second_finalize_is_a_noop_and_finalize_naming_a_completed_attempt_too():
    lines = [
        CURRICULUM,
        *attempt("u1", "ex1", 100, [True]),
        submission("AttemptFinalized", "u1", "ex1", 150, sid="second-finalize"),
        submission("AttemptFinalized", "u1", "ex1", 151, attempt=1),
        submission("AttemptReset", "u1", "ex1", 152),
    ]
    outputs, simulator = simulate(lines)
    assert len(completed(outputs)) == 1
    assert dead_letters(outputs) == []
    assert simulator.counts["noop_finalize"] == 2 and simulator.counts["noop_reset"] == 1


def test_repeated_submission_ids_are_processed_once():
    answer = submission("AnswerSubmitted", "u1", "ex1", 101, questionId="q1", correct=True)
    lines = [CURRICULUM, submission("AttemptStarted", "u1", "ex1", 100, totalQuestions=2), answer, answer,
             submission("AttemptFinalized", "u1", "ex1", 102)]
    outputs, simulator = simulate(lines)
    assert completed(outputs) == [(1, 1, 2, 50.0, 0, False)]
    assert simulator.counts["duplicates"] == 1


def test_first_answer_counts_skips_are_wrong_reports_leave_the_attempt():
    lines = [
        CURRICULUM,
        submission("AnswerSubmitted", "u1", "ex1", 100, questionId="q1", correct=True),  # opens attempt 1
        submission("AnswerSubmitted", "u1", "ex1", 101, questionId="q1", correct=False),  # ignored
        submission("QuestionSkipped", "u1", "ex1", 102, questionId="q2"),
        submission("AnswerSubmitted", "u1", "ex1", 103, questionId="q3", correct=True),
        submission("QuestionReported", "u1", "ex1", 104, questionId="q3"),
        submission("AnswerSubmitted", "u1", "ex1", 105, questionId="q4", correct=True),
        submission("AttemptFinalized", "u1", "ex1", 106),
    ]
    outputs, _ = simulate(lines)
    # total = 4 distinct answered/skipped (no totalQuestions) - 1 reported = 3; correct = q1, q4
    assert completed(outputs) == [(1, 2, 3, 200 / 3, 0, False)]
    assert of_type(outputs, "AttemptOpened")[0].totalQuestions is None


def test_total_questions_from_finalize_beats_started_and_started_while_open_is_ignored():
    lines = [
        CURRICULUM,
        submission("AttemptStarted", "u1", "ex1", 100, totalQuestions=10),
        submission("AttemptStarted", "u1", "ex1", 101, totalQuestions=2),  # no-op
        submission("AnswerSubmitted", "u1", "ex1", 102, questionId="q1", correct=True),
        submission("AttemptFinalized", "u1", "ex1", 103),
    ]
    assert completed(simulate(lines)[0]) == [(1, 1, 10, 10.0, 0, False)]
    lines[-1] = submission("AttemptFinalized", "u1", "ex1", 103, totalQuestions=1)
    assert completed(simulate(lines)[0]) == [(1, 1, 1, 100.0, 5, True)]


def test_accuracy_is_zero_when_everything_was_reported():
    lines = [CURRICULUM, submission("QuestionReported", "u1", "ex1", 100, questionId="q1"),
             submission("AttemptFinalized", "u1", "ex1", 101, totalQuestions=1)]
    assert completed(simulate(lines)[0]) == [(1, 0, 0, 0.0, 0, False)]


@pytest.mark.parametrize(("course_id", "exercise", "reason"), [("nope", "ex1", "unknown_course"), ("c1", "ex-missing", "unknown_exercise")])
def test_finalize_outside_the_curriculum_is_dead_lettered_and_the_attempt_stays_open(course_id, exercise, reason):
    lines = [
        CURRICULUM,
        submission("AnswerSubmitted", "u1", exercise, 100, questionId="q1", correct=True, course_id=course_id),
        submission("AttemptFinalized", "u1", exercise, 101, course_id=course_id),
    ]
    outputs, _ = simulate(lines)
    assert [r for r, _ in dead_letters(outputs)] == [reason]
    fixed = course(course_id, [[resource(exercise, 1, "Exercise", 2)]])
    lines += [fixed, submission("AttemptFinalized", "u1", exercise, 101, course_id=course_id)]  # same id, checked afresh
    outputs, _ = simulate(lines)
    assert completed(outputs) == [(1, 1, 1, 100.0, 3, True)]


def test_accuracy_counts_every_question_answered_when_fewer_were_declared():
    """SPEC §3.2 as amended: 3 declared, 4 distinct answered correctly is 4/4, not 4/3."""
    lines = [CURRICULUM, submission("AttemptStarted", "u1", "ex1", 100, totalQuestions=3)]
    lines += [submission("AnswerSubmitted", "u1", "ex1", 101 + q, questionId=f"q{q}", correct=True) for q in range(4)]
    lines.append(submission("AttemptFinalized", "u1", "ex1", 110))
    assert completed(simulate(lines)[0]) == [(1, 4, 4, 100.0, 5, True)]  # the bonus applies at 100, not 133


def test_declared_total_minus_reported_is_kept_when_it_is_the_larger():
    lines = [CURRICULUM, submission("AttemptStarted", "u1", "ex1", 100, totalQuestions=5),
             submission("AnswerSubmitted", "u1", "ex1", 101, questionId="q1", correct=True),
             submission("QuestionReported", "u1", "ex1", 102, questionId="q9"),  # never answered: still removed
             submission("AttemptFinalized", "u1", "ex1", 103)]
    assert completed(simulate(lines)[0]) == [(1, 1, 4, 25.0, 0, False)]


def test_without_a_declared_total_a_report_of_an_unanswered_question_does_not_shrink_the_total():
    lines = [CURRICULUM,
             submission("AnswerSubmitted", "u1", "ex1", 100, questionId="q1", correct=True),
             submission("AnswerSubmitted", "u1", "ex1", 101, questionId="q2", correct=True),
             submission("QuestionReported", "u1", "ex1", 102, questionId="q7"),
             submission("AttemptFinalized", "u1", "ex1", 103)]
    assert completed(simulate(lines)[0]) == [(1, 2, 2, 100.0, 5, True)]


def test_an_open_attempts_progress_is_published_when_an_answer_skip_or_report_changes_it():
    lines = [CURRICULUM,
             submission("AnswerSubmitted", "u1", "ex1", 100, questionId="q1", correct=True),  # opens attempt 1
             submission("AnswerSubmitted", "u1", "ex1", 101, questionId="q1", correct=False),  # ignored: no change
             submission("QuestionSkipped", "u1", "ex1", 102, questionId="q2"),
             submission("QuestionReported", "u1", "ex1", 103, questionId="q1"),
             submission("AttemptStarted", "u1", "ex1", 104, totalQuestions=9)]  # open already: a no-op
    outputs, _ = simulate(lines)
    assert [type(o.value).__name__ for o in outputs] == ["AttemptOpened", "AttemptProgressed", "AttemptProgressed",
                                                         "AttemptProgressed"]
    progress = [(p.attempt, p.answered, p.correct, p.reported, p.totalQuestions) for p in of_type(outputs, "AttemptProgressed")]
    assert progress == [(1, 1, 1, 0, None), (1, 2, 1, 0, None), (1, 1, 0, 1, None)]
    assert all(o.topic == "xp.attempts.v1" and o.key == "u1" for o in outputs)
