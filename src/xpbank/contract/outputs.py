"""Output values (SPEC §3.2, §3.5, §3.6). Every `id` is a uuid5 of the output's
identity, so a redelivered output is recognisably the same output."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from xpbank.contract.times import Time


class Output(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AttemptOpened(Output):
    id: str
    type: Literal["AttemptOpened"] = "AttemptOpened"
    generation: int
    userSourcedId: str
    exerciseSourcedId: str
    courseSourcedId: str
    attempt: int
    totalQuestions: int | None
    sourceEventId: str
    eventTime: Time


class AttemptCompleted(Output):
    id: str
    type: Literal["AttemptCompleted"] = "AttemptCompleted"
    generation: int
    userSourcedId: str
    exerciseSourcedId: str
    courseSourcedId: str
    attempt: int
    correct: int
    total: int
    accuracy: float
    exerciseXp: int
    mastered: bool
    sourceEventId: str
    eventTime: Time


class AttemptDiscarded(Output):
    id: str
    type: Literal["AttemptDiscarded"] = "AttemptDiscarded"
    generation: int
    userSourcedId: str
    exerciseSourcedId: str
    courseSourcedId: str
    attempt: int
    answered: int
    sourceEventId: str
    eventTime: Time


AttemptEvent = AttemptOpened | AttemptCompleted | AttemptDiscarded


class BankedXpAwarded(Output):
    id: str
    type: Literal["BankedXpAwarded"] = "BankedXpAwarded"
    awardId: str
    generation: int
    revision: int
    userSourcedId: str
    email: str | None
    courseSourcedId: str
    resourceSourcedId: str
    resourceKind: str
    exerciseSourcedId: str
    attempt: int
    masteryEventId: str
    activeSeconds: float
    minutes: int
    expectedXp: int
    xp: int
    deltaXp: int
    eventTime: Time


class XpFact(Output):
    factId: str
    kind: Literal["exercise", "banked"]
    generation: int
    revision: int
    userSourcedId: str
    email: str | None
    date: date
    courseSourcedId: str
    subject: str | None
    resourceSourcedId: str
    exerciseSourcedId: str
    attempt: int
    xp: int
    eventTime: Time
    sources: tuple[str, ...]


DeadLetterReason = Literal[
    "malformed_json",
    "schema_violation",
    "payload_too_large",
    "future_event_time",
    "too_late",
    "stale_attempt",
    "unknown_course",
    "unknown_exercise",
]
REASONS: tuple[str, ...] = DeadLetterReason.__args__


class DeadLetter(Output):
    reason: DeadLetterReason
    detail: str
    topic: str
    partition: int | None
    offset: int | None
    key: str | None
    timestamp: Time | None
    eventId: str | None
    payload: str | None
    payloadEncoding: Literal["utf-8", "base64"] = "utf-8"
