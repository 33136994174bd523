"""The events the rules apply, as plain values, and what a refused or ignored event is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class TimeSpent:
    id: str
    user: str
    resource: str
    event_time: datetime
    credited_ms: int  # §2.1: the active seconds after the credit guard, in integer ms


@dataclass(frozen=True)
class Submission:
    type: str
    id: str
    user: str
    exercise: str
    course: str
    event_time: datetime
    attempt: int | None
    question: str | None
    correct: bool | None
    total_questions: int | None
    email: str | None


@dataclass(frozen=True)
class Mastery:
    id: str
    user: str
    exercise: str
    course: str
    attempt: int
    accuracy: float
    exercise_xp: int
    email: str | None
    event_time: datetime


@dataclass(frozen=True)
class CourseUpsert:
    course: str
    subject: str | None
    units: list  # the validated JSON units (§2.4)


@dataclass(frozen=True)
class CourseDelete:
    course: str


@dataclass(frozen=True)
class Refused:
    reason: str
    event_id: str | None = None


@dataclass(frozen=True)
class Ignored:
    event_type: str
