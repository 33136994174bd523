"""Output values (SPEC §3.2, §3.5, §3.6). Every `id` is a uuid5 of the output's
identity, so a redelivered output is recognisably the same output."""

from __future__ import annotations

from datetime import date  # noqa: F401 - pydantic resolves the `date: date` annotation by name
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


class AttemptProgressed(Output):
    """The open attempt's counts after an answer, skip or report changed them: what the
    web app shows while the learner works (reported questions are not counted)."""

    id: str
    type: Literal["AttemptProgressed"] = "AttemptProgressed"
    generation: int
    userSourcedId: str
    exerciseSourcedId: str
    courseSourcedId: str
    attempt: int
    answered: int
    correct: int
    reported: int
    totalQuestions: int | None
    sourceEventId: str
    eventTime: Time


AttemptEvent = AttemptOpened | AttemptProgressed | AttemptCompleted | AttemptDiscarded


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


class ExplainedResource(Output):
    resourceSourcedId: str
    kind: str
    cap: int
    activeSeconds: float
    minutes: int
    priorAward: int
    decision: int
    reason: str  # not passive / zero xp / already banked / below 20 s / awarded / not decided


class Explanation(Output):
    """Why a mastery banked what it banked: its window and, per resource, the seconds up
    to T, minutes, cap, prior award and decision (`xpbank explain --json`)."""

    userSourcedId: str
    exerciseSourcedId: str
    masteryEventId: str | None
    decidedAt: Time | None
    windowStartsAfter: str | None
    resources: tuple[ExplainedResource, ...]
    anomalies: tuple[str, ...]
    note: str | None = None

    @property
    def total(self) -> int:
        return sum(r.decision for r in self.resources if r.reason == "awarded")


class BankingDecided(Explanation):
    """A banking decision's evidence on `xp.decisions.v1` (compacted, key user:exercise),
    published when a mastery is banked and again when a late heartbeat changes it."""

    id: str
    type: Literal["BankingDecided"] = "BankingDecided"
    generation: int

    def explanation(self) -> Explanation:
        return Explanation.model_validate(self.model_dump(exclude={"id", "type", "generation"}))


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


class SinkRequest(Output):
    """A request a write-back sink sent (SPEC §3.7): never its headers (they carry the credentials)."""

    method: str
    url: str
    body: str | None


class SinkResponse(Output):
    status: int
    body: str | None  # as answered, cut to SINK_BODY_LIMIT characters


SinkReason = Literal["refused", "unreadable_fact"]


class SinkDeadLetter(Output):
    """A fact a write-back sink could not deliver for good, on `xp.sink-dead-letters.v1`:
    `refused` (the server answered a 4xx other than 401, 408 and 429: its request and
    response are here) or `unreadable_fact` (the record on `xp.facts.v1` is not an XpFact)."""

    sink: Literal["oneroster", "caliper"]
    reason: SinkReason
    detail: str
    factId: str | None
    generation: int | None
    revision: int | None
    topic: str
    partition: int
    offset: int
    request: SinkRequest | None
    response: SinkResponse | None


SINK_BODY_LIMIT = 65536
