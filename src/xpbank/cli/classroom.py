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
    learner = _Learner(rng, user, start, course_id, pace)
    for u in range(1, units + 1):
        for l in range(1, lessons + 1):
            late = learner.watch(u, l)
            learner.exercise(f"exercise-{u}-{l}", mistakes)
            for when, line in late:  # the unload beacons, after the exercise's mastery
                learner.emit(learner.clock + rng.uniform(1, 4) * pace, line, when=when)
            if mistakes:
                learner.client_mistakes(u, l)
    return learner.out


class _Learner:
    """One learner's arrivals, on a clock (seconds after the start) that only moves on.
    Every draw from `rng` is in a fixed order: the same seed, the same classroom."""

    def __init__(self, rng: random.Random, user: str, start: datetime, course_id: str, pace: float) -> None:
        self.rng, self.user, self.start, self.course_id, self.pace = rng, user, start, course_id, pace
        self.out: list[Arrival] = []
        self.clock = rng.uniform(0, 20) * pace

    def emit(self, delay: float, line: dict, when: float | None = None) -> None:
        at = self.start + timedelta(seconds=when or delay)
        self.out.append(Arrival(delay, line | {"timestamp": format_time(at)}))

    def ev(self, *parts: object) -> str:
        return f"urn:uuid:{uuid.uuid5(NS, ':'.join(map(str, (self.user, *parts))))}"

    def watch(self, u: int, l: int) -> list[tuple[float, dict]]:
        """The lesson's video and article, as heartbeats; returns the late ones."""
        rng, user, pace = self.rng, self.user, self.pace
        late: list[tuple[float, dict]] = []
        for rid in (f"video-{u}-{l}", f"article-{u}-{l}"):
            if rng.random() < 0.15:
                continue  # skipped this one
            beats = rng.randint(1, 6)
            for b in range(beats):
                seconds = rng.choice([10, 15, 20, 30, 30, 30, 45, 60])
                self.clock += seconds * pace
                clock = self.clock
                event = _time_spent(self.ev("ts", rid, b), user, rid, self.course_id, self.start + timedelta(seconds=clock),
                                    seconds)
                line = {"topic": "learning.caliper.v1", "key": user, "value": event}
                if b == beats - 1 and rng.random() < 0.2:
                    late.append((clock, line))  # the unload beacon: arrives after the mastery
                    continue
                self.emit(clock, line)
                if rng.random() < 0.05:
                    self.emit(clock + 0.5 * pace, line, when=clock)  # redelivered
        return late

    def exercise(self, exercise: str, mistakes: bool) -> None:
        """Attempts until one is good enough or the third is finalized; some are reset."""
        rng, pace = self.rng, self.pace
        attempt_no = 1
        for tries in range(4):
            self.clock += 5 * pace
            self.emit(self.clock, self.submission("AttemptStarted", exercise, tries, totalQuestions=4))
            skill = rng.random()
            for q in range(4):
                self.clock += rng.uniform(3, 8) * pace
                self.emit(self.clock, self.submission("AnswerSubmitted", exercise, tries, questionId=f"q{q}",
                                                      correct=rng.random() < 0.55 + skill * 0.5, attempt=attempt_no))
            if mistakes and rng.random() < 0.05:
                stale = self.submission("AnswerSubmitted", exercise, tries, questionId="q0", correct=True,
                                        attempt=attempt_no + 1)
                self.emit(self.clock + 0.2 * pace, stale)
            if rng.random() < 0.08 and tries < 3:
                self.clock += 2 * pace
                self.emit(self.clock, self.submission("AttemptReset", exercise, tries))
                continue  # a reset does not consume the number
            self.clock += 2 * pace
            self.emit(self.clock, self.submission("AttemptFinalized", exercise, tries, attempt=attempt_no))
            attempt_no += 1
            if skill > 0.35 or attempt_no > 3:
                break

    def submission(self, kind: str, exercise: str, tries: int, **fields: object) -> dict:
        """A submission line at the clock's time."""
        t = self.clock
        return {
            "topic": "learning.submissions.v1", "key": self.user,
            "value": {"id": self.ev(kind, exercise, tries, t, *fields.values()), "type": kind, "userSourcedId": self.user,
                      "exerciseSourcedId": exercise, "courseSourcedId": self.course_id,
                      "eventTime": format_time(self.start + timedelta(seconds=t)), "email": f"{self.user}@school.example",
                      **fields},
        }

    def client_mistakes(self, u: int, l: int) -> None:
        """What real clients get wrong now and then: bad JSON, a schema violation, a clock
        an hour ahead."""
        rng, user, pace, clock = self.rng, self.user, self.pace, self.clock
        if rng.random() < 0.04:
            self.emit(clock + pace, {"topic": "learning.caliper.v1", "key": user, "raw": '{"type": "TimeSpentEvent", "id": '})
        if rng.random() < 0.04:
            bad = _time_spent(self.ev("bad", l), user, f"video-{u}-{l}", self.course_id, self.start + timedelta(seconds=clock), 30)
            bad["action"] = "Paused"
            self.emit(clock + pace, {"topic": "learning.caliper.v1", "key": user, "value": bad})
        if rng.random() < 0.03:
            future = _time_spent(self.ev("future", l), user, f"video-{u}-{l}", self.course_id,
                                 self.start + timedelta(seconds=clock + 3600), 30)
            self.emit(clock + pace, {"topic": "learning.caliper.v1", "key": user, "value": future})


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
