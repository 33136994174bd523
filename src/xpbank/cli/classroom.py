"""A simulated classroom: a course and learners who watch, read, answer and retry.

Deterministic for a seed. It yields record lines with their arrival offset (seconds
after the start), in arrival order, including what real clients do wrong: redelivered
heartbeats, beacons that arrive after the mastery, bad JSON, schema violations, clocks
in the future and answers for a stale attempt. Used by `xpbank demo`, the e2e tests
and the benchmarks."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from xpbank.contract.times import format_time

NS = uuid.UUID("6f1d1c52-6a57-4c39-9f0e-2f6a0b7c1d10")


@dataclass(frozen=True)
class Arrival:
    offset: float  # seconds after the start of the class
    line: dict[str, Any]


def course_record(course_id: str = "course-math", units: int = 2, lessons: int = 3) -> dict[str, Any]:
    value = {
        "type": "CourseUpserted",
        "courseSourcedId": course_id,
        "subject": "Math",
        "units": [
            {
                "sourcedId": f"{course_id}-u{u}",
                "sortOrder": u,
                "lessons": [
                    {
                        "sourcedId": f"{course_id}-u{u}-l{l}",
                        "sortOrder": l,
                        "resources": [
                            {"sourcedId": f"video-{u}-{l}", "sortOrder": 1, "kind": "Video", "xp": 4, "type": "interactive"},
                            {"sourcedId": f"article-{u}-{l}", "sortOrder": 2, "kind": "Article", "xp": 2,
                             **({"type": "interactive"} if l % 2 else {})},
                            {"sourcedId": f"exercise-{u}-{l}", "sortOrder": 3, "kind": "Exercise", "xp": 3},
                        ],
                    }
                    for l in range(1, lessons + 1)
                ],
            }
            for u in range(1, units + 1)
        ],
    }
    return {"topic": "learning.curriculum.v1", "key": course_id, "value": value}


def classroom(
    learners: int = 50,
    seed: int = 7,
    start: datetime | None = None,
    course_id: str = "course-math",
    units: int = 2,
    lessons: int = 3,
    pace: float = 1.0,
    mistakes: bool = True,
    first_learner: int = 0,
) -> Iterator[Arrival]:
    """Every learner works through the lessons in order; `pace` scales the waits. By
    default the class began 45 minutes ago (records reach brokers that delete by time).
    Learners are numbered from `first_learner` (`learner-000`, ...)."""
    rng = random.Random(seed)
    start = start or datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=45)
    arrivals = [Arrival(0.0, course_record(course_id, units, lessons) | {"timestamp": format_time(start)})]
    for n in range(first_learner, first_learner + learners):
        arrivals += _learner(rng, f"learner-{n:03d}", start, course_id, units, lessons, pace, mistakes)
    arrivals.sort(key=lambda a: a.offset)
    yield from arrivals


def _learner(rng, user, start, course_id, units, lessons, pace, mistakes) -> list[Arrival]:
    out: list[Arrival] = []
    clock = rng.uniform(0, 20) * pace

    def emit(delay: float, line: dict, when: float | None = None) -> None:
        out.append(Arrival(delay, line | {"timestamp": format_time(start + timedelta(seconds=when or delay))}))

    def ev(*parts: object) -> str:
        return f"urn:uuid:{uuid.uuid5(NS, ':'.join(map(str, (user, *parts))))}"

    for u in range(1, units + 1):
        for l in range(1, lessons + 1):
            late: list[tuple[float, dict]] = []
            for rid in (f"video-{u}-{l}", f"article-{u}-{l}"):
                if rng.random() < 0.15:
                    continue  # skipped this one
                beats = rng.randint(1, 6)
                for b in range(beats):
                    seconds = rng.choice([10, 15, 20, 30, 30, 30, 45, 60])
                    clock += seconds * pace
                    event = _time_spent(ev("ts", rid, b), user, rid, course_id, start + timedelta(seconds=clock), seconds)
                    line = {"topic": "learning.caliper.v1", "key": user, "value": event}
                    if b == beats - 1 and rng.random() < 0.2:
                        late.append((clock, line))  # the unload beacon: arrives after the mastery
                        continue
                    emit(clock, line)
                    if rng.random() < 0.05:
                        emit(clock + 0.5 * pace, line, when=clock)  # redelivered
            exercise = f"exercise-{u}-{l}"
            attempt_no = 1
            for tries in range(4):
                clock += 5 * pace
                sub = lambda kind, t, **f: {  # noqa: E731
                    "topic": "learning.submissions.v1", "key": user,
                    "value": {"id": ev(kind, exercise, tries, t, *f.values()), "type": kind, "userSourcedId": user,
                              "exerciseSourcedId": exercise, "courseSourcedId": course_id,
                              "eventTime": format_time(start + timedelta(seconds=t)), "email": f"{user}@school.example", **f},
                }
                emit(clock, sub("AttemptStarted", clock, totalQuestions=4))
                skill = rng.random()
                for q in range(4):
                    clock += rng.uniform(3, 8) * pace
                    emit(clock, sub("AnswerSubmitted", clock, questionId=f"q{q}", correct=rng.random() < 0.55 + skill * 0.5, attempt=attempt_no))
                if mistakes and rng.random() < 0.05:
                    emit(clock + 0.2 * pace, sub("AnswerSubmitted", clock, questionId="q0", correct=True, attempt=attempt_no + 1))  # stale
                if rng.random() < 0.08 and tries < 3:
                    clock += 2 * pace
                    emit(clock, sub("AttemptReset", clock))
                    continue  # a reset does not consume the number
                clock += 2 * pace
                emit(clock, sub("AttemptFinalized", clock, attempt=attempt_no))
                attempt_no += 1
                if skill > 0.35 or attempt_no > 3:
                    break
            for when, line in late:
                emit(clock + rng.uniform(1, 4) * pace, line, when=when)
            if mistakes and rng.random() < 0.04:
                emit(clock + pace, {"topic": "learning.caliper.v1", "key": user, "raw": '{"type": "TimeSpentEvent", "id": '})
            if mistakes and rng.random() < 0.04:
                bad = _time_spent(ev("bad", l), user, f"video-{u}-{l}", course_id, start + timedelta(seconds=clock), 30)
                bad["action"] = "Paused"
                emit(clock + pace, {"topic": "learning.caliper.v1", "key": user, "value": bad})
            if mistakes and rng.random() < 0.03:
                future = _time_spent(ev("future", l), user, f"video-{u}-{l}", course_id, start + timedelta(seconds=clock + 3600), 30)
                emit(clock + pace, {"topic": "learning.caliper.v1", "key": user, "value": future})
    return out


def _time_spent(event_id: str, user: str, rid: str, course_id: str, at: datetime, seconds: float) -> dict[str, Any]:
    return {
        "@context": "http://purl.imsglobal.org/ctx/caliper/v1p2",
        "id": event_id,
        "type": "TimeSpentEvent",
        "profile": "TimebackProfile",
        "action": "SpentTime",
        "actor": {"id": f"https://roster.school.example/ims/oneroster/rostering/v1p2/users/{user}", "type": "TimebackUser",
                  "email": f"{user}@school.example"},
        "object": {
            "id": f"https://app.school.example/activities/{rid}",
            "type": "TimebackActivityContext",
            "subject": "Math",
            "activity": {"id": f"https://roster.school.example/ims/oneroster/resources/v1p2/resources/{rid}"},
            "course": {"id": f"https://roster.school.example/ims/oneroster/rostering/v1p2/courses/{course_id}"},
        },
        "eventTime": format_time(at),
        "generated": {
            "id": f"{event_id}-metrics",
            "type": "TimebackTimeSpentMetricsCollection",
            "items": [
                {"type": "active", "value": seconds, "startDate": format_time(at - timedelta(seconds=seconds)),
                 "endDate": format_time(at)},
                {"type": "inactive", "value": 3},
            ],
        },
    }
