"""The read models (issue 5) as pure planning: an output record of `xp.facts.v1` or
`xp.attempts.v1` becomes one planned Redis upsert — a script name, its keys and its
arguments. The Redis edge (`read_models.py`) runs each plan as one atomic Lua script.

Read models only ever follow the output topics; no decision reads them.

Keys (every one starts with the configurable prefix, `XPBANK_REDIS_PREFIX`):
- `fact:{factId}`            hash: generation, revision, xp, date, user, kind, resource
- `xp:{user}`                the learner's total XP (integer string)
- `xp-by-date:{user}`        hash: UTC date -> XP of that date (dates with 0 XP are absent)
- `banked:{user}`            hash: resource -> banked XP of that resource
- `assess:active:{user}:{exercise}`  the open attempt's number (absent when none is open)
- `assess:last:{user}:{exercise}`    hash: generation, offset of the attempt event applied
  last, and its attempt and state (open / completed / discarded)

A fact is applied only when its (generation, revision) is greater than the stored
one, the same rule as every fact consumer (SPEC §3.5), so totals are the sum over the
current facts whatever the redelivery or order. An attempt event is applied only when
its (generation, offset in its partition) is greater than the last applied one; the
attempts topic is keyed by user, so one learner's events keep their order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from xpbank.contract.outputs import AttemptCompleted, AttemptDiscarded, AttemptEvent, AttemptOpened, XpFact

DEFAULT_PREFIX = "xpbank:"


@dataclass(frozen=True)
class Keys:
    prefix: str = DEFAULT_PREFIX

    def fact(self, fact_id: str) -> str:
        return f"{self.prefix}fact:{fact_id}"

    def total(self, user: str) -> str:
        return f"{self.prefix}xp:{user}"

    def by_date(self, user: str) -> str:
        return f"{self.prefix}xp-by-date:{user}"

    def banked(self, user: str) -> str:
        return f"{self.prefix}banked:{user}"

    def active_attempt(self, user: str, exercise: str) -> str:
        """The pointer the web app reads (seed 003): `assess:active:{user}:{exercise}`."""
        return f"{self.prefix}assess:active:{user}:{exercise}"

    def last_attempt_event(self, user: str, exercise: str) -> str:
        return f"{self.prefix}assess:last:{user}:{exercise}"

    @property
    def pattern(self) -> str:
        """Every key of these read models (for SCAN); `*` etc. in the prefix are escaped."""
        escaped = "".join(f"\\{c}" if c in "*?[]\\" else c for c in self.prefix)
        return escaped + "*"


@dataclass(frozen=True)
class Upsert:
    script: Literal["fact", "attempt"]
    keys: tuple[str, ...]
    args: tuple[str | int, ...]


def plan_fact(keys: Keys, fact: XpFact) -> Upsert:
    user = fact.userSourcedId
    return Upsert(
        "fact",
        (keys.fact(fact.factId), keys.total(user), keys.by_date(user), keys.banked(user)),
        (fact.generation, fact.revision, fact.xp, fact.date.isoformat(), user, fact.kind, fact.resourceSourcedId),
    )


ATTEMPT_STATES = {AttemptOpened: "open", AttemptCompleted: "completed", AttemptDiscarded: "discarded"}


def plan_attempt(keys: Keys, event: AttemptEvent, offset: int) -> Upsert:
    """`offset`: the event's offset in its partition of `xp.attempts.v1`."""
    user, exercise = event.userSourcedId, event.exerciseSourcedId
    return Upsert(
        "attempt",
        (keys.active_attempt(user, exercise), keys.last_attempt_event(user, exercise)),
        (event.generation, offset, ATTEMPT_STATES[type(event)], event.attempt),
    )


def xp_view(user: str, total: str | bytes | None, by_date: dict) -> dict:
    """`GET /users/{user}/xp` from the raw Redis values."""
    dates = {_text(d): int(v) for d, v in by_date.items() if int(v)}
    return {"userSourcedId": user, "totalXp": int(total or 0), "byDate": dict(sorted(dates.items()))}


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
