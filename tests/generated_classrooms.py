"""Hypothesis strategies for classrooms that go wrong in every way SPEC §3 covers, as
record lines in arrival order: interleaved learners, redelivered and late heartbeats,
envelopes, resets, reported and skipped questions, stale attempt numbers, masteries from
other systems, unknown courses and exercises, courses replaced and deleted mid-stream,
bad JSON, schema violations and clocks in the future."""

from __future__ import annotations

from hypothesis import strategies as st

from tests.builders import at, envelope, heartbeat, line, mastery, submission, time_spent_event

KINDS = ["Article", "Video", "Video", "Article", "Exercise", "Quiz"]
SECONDS = [0, 5, 15, 19.999, 20, 25, 29.999, 30, 45, 59.9995, 70, 89.999, 90, 130, 400, 1.5]
QUESTIONS = ["q0", "q1", "q2", "q3"]
SUBMISSION_KINDS = ["AttemptStarted", "AnswerSubmitted", "AnswerSubmitted", "QuestionSkipped", "QuestionReported",
                    "AttemptFinalized", "AttemptReset"]


@st.composite
def course_value(draw, course_id: str = "c1") -> dict:
    """A course with shuffled and tied sort orders, zero and missing xp, non-interactive
    passive resources and exercises inside lessons (§2.4, §3.4.1)."""
    units = []
    for u in range(draw(st.integers(1, 2))):
        lessons = []
        for n in range(draw(st.integers(1, 3))):
            items = [{"sourcedId": f"r{u}{n}{r}", "sortOrder": draw(st.integers(0, 9)), "kind": draw(st.sampled_from(KINDS)),
                      "xp": draw(st.sampled_from([0, 1, 2, 3, 5, 5, None])),
                      "type": draw(st.sampled_from(["interactive", "interactive", None]))}
                     for r in range(draw(st.integers(1, 4)))]
            if draw(st.integers(0, 9)) < 7:  # most lessons end with an exercise
                items.append({"sourcedId": f"x{u}{n}", "sortOrder": 10, "kind": "Exercise", "xp": draw(st.integers(1, 4))})
            lessons.append({"sourcedId": f"l{u}{n}", "sortOrder": draw(st.integers(0, 9)), "resources": items})
        units.append({"sourcedId": f"u{u}", "sortOrder": u, "lessons": draw(st.permutations(lessons))})
    return {"type": "CourseUpserted", "courseSourcedId": course_id, "subject": draw(st.sampled_from(["Math", None])),
            "units": units}


def resources_of(course: dict) -> tuple[list[str], list[str], list[tuple[list[str], str]]]:
    """(passive-ish resources, exercises, lessons as (their other resources, their last
    exercise)) of a course value."""
    placed = [r for u in course["units"] for l in u["lessons"] for r in l["resources"]]
    lessons = []
    for lesson in (l for u in course["units"] for l in u["lessons"]):
        ids = [r["sourcedId"] for r in lesson["resources"] if r["kind"] != "Exercise"]
        exercises = [r["sourcedId"] for r in lesson["resources"] if r["kind"] == "Exercise"]
        if ids and exercises:
            lessons.append((ids, exercises[-1]))
    return ([r["sourcedId"] for r in placed if r["kind"] != "Exercise"],
            [r["sourcedId"] for r in placed if r["kind"] == "Exercise"], lessons)


@st.composite
def time_spent_line(draw, user: str, resources: list[str], t: float) -> dict:
    """A heartbeat, sometimes with several items, no course, or a clock in the future."""
    rid = draw(st.sampled_from(resources))
    seconds = draw(st.sampled_from(SECONDS + [30, 45, 60, 90]))
    record = heartbeat(user, rid, seconds, t, anchored=draw(st.booleans()), course_id=draw(st.sampled_from(["c1", None])))
    items = record["value"]["generated"]["items"]
    extra = draw(st.sampled_from([None, None, "inactive", "active", "waste"]))
    if extra:
        items.append({"type": extra, "value": draw(st.sampled_from(SECONDS))})
    if draw(st.integers(0, 15)) == 0:  # the clock of the device is ahead of the record's
        record["timestamp"] = at(t - 400)
    return record


@st.composite
def submission_line(draw, user: str, exercises: list[str], t: float) -> dict:
    kind = draw(st.sampled_from(SUBMISSION_KINDS))
    fields: dict = {}
    if kind in ("AnswerSubmitted", "QuestionSkipped", "QuestionReported"):
        fields["questionId"] = draw(st.sampled_from(QUESTIONS))
    if kind == "AnswerSubmitted":
        fields["correct"] = draw(st.sampled_from([True, True, True, False]))
    if kind in ("AttemptStarted", "AttemptFinalized") and draw(st.booleans()):
        fields["totalQuestions"] = draw(st.integers(0, 6))
    if draw(st.integers(0, 4)) == 0:
        fields["attempt"] = draw(st.integers(1, 4))
    if kind == "AttemptFinalized" and draw(st.booleans()):
        fields["email"] = f"{user}@example.org"
    course_id = draw(st.sampled_from(["c1", "c1", "c1", "c1", "c2", "c9"]))
    sid = f"urn:uuid:00000000-0000-4000-8000-{user[-1]}{draw(st.integers(0, 10**11 - 1)):011d}"
    return submission(kind, user, draw(st.sampled_from(exercises)), t, sid=sid, course_id=course_id, **fields)


@st.composite
def attempt_lines(draw, user: str, exercises: list[str], t: float) -> list[dict]:
    """A whole attempt (start, answers, maybe a report, finalize), as most learners send."""
    ex = draw(st.sampled_from(exercises))
    answers = draw(st.lists(st.sampled_from([True, True, True, False]), min_size=1, max_size=5))
    total = draw(st.sampled_from([None, len(answers), len(answers) + 1, max(len(answers) - 1, 0)]))
    lines = [submission("AttemptStarted", user, ex, t, **({"totalQuestions": total} if total is not None else {}))]
    lines += [submission("AnswerSubmitted", user, ex, t + 1 + i, questionId=f"q{i}", correct=ok) for i, ok in enumerate(answers)]
    if draw(st.integers(0, 5)) == 0:
        lines.append(submission("QuestionReported", user, ex, t + 7, questionId="q0"))
    lines.append(submission("AttemptFinalized", user, ex, t + 8, email=f"{user}@example.org"))
    return lines


@st.composite
def study_lines(draw, user: str, lesson: tuple[list[str], str], t: float) -> tuple[list[dict], float]:
    """A lesson as a learner works through it: heartbeats on its resources, then an
    attempt of its exercise; the last heartbeat (the page-unload beacon) sometimes
    arrives after the attempt, before the mastery's time (a late event, §3.4.6)."""
    resources, exercise = lesson
    lines: list[dict] = []
    for rid in draw(st.lists(st.sampled_from(resources), min_size=1, max_size=3, unique=True)):
        for _ in range(draw(st.integers(1, 4))):
            t += 30
            lines.append(draw(time_spent_line(user, [rid], t)))
    beacon = lines.pop() if draw(st.integers(0, 3)) == 0 else None
    lines += draw(attempt_lines(user, [exercise], t + 10))
    return lines + ([beacon] if beacon else []), t + 20


@st.composite
def learner_lines(draw, user: str, others: list[str], course: dict) -> list[dict]:
    """One learner's records in their order; their clock mostly moves forward, and
    sometimes jumps back (late heartbeats, some beyond the lateness bound)."""
    passive, exercises, lessons = resources_of(course)
    lines: list[dict] = []
    t = draw(st.integers(0, 600))
    resources = passive + exercises[:1] + ["nowhere"]
    for _ in range(draw(st.integers(0, 16))):
        t += draw(st.sampled_from([0, 1, 5, 30, 60, 120, 600]))
        when = t - draw(st.sampled_from([0] * 8 + [200, 1000, 5000]))  # late, or too late
        action = draw(st.sampled_from(["study"] * 3 + ["watch"] * 3 + ["envelope", "attempt", "submission",
                                                                        "submission", "mastery", "again", "bad"]))
        if action == "study" and lessons:
            studied, t = draw(study_lines(user, draw(st.sampled_from(lessons)), t))
            lines += studied
        elif action == "watch":  # a few heartbeats on one resource
            rid = draw(st.sampled_from(resources))
            for n in range(draw(st.integers(1, 4))):
                lines.append(draw(time_spent_line(user, [rid], when + 30 * n)))
        elif action == "envelope":
            events = [draw(time_spent_line(draw(st.sampled_from([user, *others])), resources, when - i))["value"]
                      for i in range(draw(st.integers(1, 3)))]
            if draw(st.booleans()):
                events.append({"id": "urn:uuid:00000000-0000-4000-8000-00000000000e", "type": "NavigationEvent"})
            lines.append(envelope(user, events, when))
        elif action == "attempt" and exercises:
            lines += draw(attempt_lines(user, exercises, t))
        elif action == "submission" and exercises:
            lines.append(draw(submission_line(user, exercises + ["r000", "nowhere"], t)))
        elif action == "mastery":  # another system's mastery, of any exercise, course or attempt
            ex = draw(st.sampled_from(exercises + ["nowhere"]))
            lines.append(mastery(user, ex, when, draw(st.integers(1, 3)), draw(st.sampled_from(["c1", "c1", "c9"]))))
        elif action == "again" and lines:
            lines.append(draw(st.sampled_from(lines)))  # a redelivered record
        elif action == "bad":
            broken = time_spent_event(user, resources[0], 30, when)
            lines.append(draw(st.sampled_from([
                line("learning.caliper.v1", user, None, at(when)) | {"raw": '{"type": "TimeSpentEvent", "id": '},
                line("learning.caliper.v1", user, broken | {"action": "Paused"}, at(when)),
                line("learning.submissions.v1", user, {"type": "AnswerSubmitted", "userSourcedId": user}, at(when)),
            ])))
    return lines


@st.composite
def classrooms(draw) -> list[dict]:
    """Courses, then the learners' records interleaved at random, with the course
    replaced, deleted and restored at random moments."""
    course = draw(course_value())
    users = [f"learner{n}" for n in range(draw(st.integers(1, 3)))]
    queues = [draw(learner_lines(u, [o for o in users if o != u], course)) for u in users]
    changed = draw(course_value())  # the same ids, other kinds, orders and xp
    replaced, deleted = line("learning.curriculum.v1", "c1", changed, at(-1)), line("learning.curriculum.v1", "c1", None, at(-1))
    restored = line("learning.curriculum.v1", "c1", course, at(-1))
    queues.append(draw(st.sampled_from([[], [], [], [replaced], [replaced, restored], [deleted, restored]])))
    lines = [line("learning.curriculum.v1", "c1", course, at(-60)),
             line("learning.curriculum.v1", "c2", draw(course_value("c2")), at(-60))]
    rng = draw(st.randoms(use_true_random=False))
    queues = [q for q in queues if q]
    while queues:
        queue = rng.choice(queues)
        lines.append(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return lines
