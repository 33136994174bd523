"""The read models (issue 5) as pure planning: an output record of `xp.facts.v1` or
`xp.attempts.v1` becomes one planned Redis upsert — a script name, its keys and its
arguments. The Redis edge (`read_models.py`) runs each plan as one atomic Lua script.

Read models only ever follow the output topics; no decision reads them.

Keys (every one starts with the configurable prefix, `XPBANK_REDIS_PREFIX`; `{user}` and
`{exercise}` are the ids as `identifiers.redis_part` writes them, `%`, `:`, `{`, `}`
percent-encoded, so keys of different (user, exercise) pairs never meet; a fact key ends
with the whole factId, itself escaped per SPEC §2.5):
- `fact:{factId}`            hash: generation, revision, xp, date, user, kind, resource
- `xp:{user}`                the learner's total XP (integer string)
- `xp-by-date:{user}`        hash: UTC date -> XP of that date (dates with 0 XP are absent)
- `banked:{user}`            hash: resource -> banked XP of that resource
- `assess:active:{user}:{exercise}`  the open attempt's number (absent when none is open)
- `assess:last:{user}:{exercise}`    hash: generation, offset of the attempt event applied
  last, and its attempt and state (open / completed / discarded)
- `attempt-open:{user}:{exercise}`   the open attempt's view (JSON, as `GET .../attempt`)
- `attempt-done:{user}:{exercise}`   the last completed attempt's view (JSON)
- `decision:{user}:{exercise}`       hash: generation, offset and the banking evidence (JSON,
  as `GET .../explain` and `xpbank explain --json`)
- `exercises:{user}`                 set: every exercise with an attempt event or a decision (so
  the web page lists a learner's exercises without scanning the keyspace); added to by
  every attempt and decision upsert, applied or not, so redelivery and rebuilds keep it
- `meta`                             hash: `epoch` (set when a rebuild starts), `state`
  (`rebuilding` / `ready`), `since`, `reason`: absent means the read models were lost
  (or never built), and readers answer 503 until a rebuild is done
- `positions`                        hash: `{topic}/{partition}` -> the next offset to project,
  written by every upsert in the same script as its data, so whatever Redis keeps (a
  replica, a restored snapshot) says from where to project again
- `rebuild-lock`                     the projector rebuilding holds it (SET NX with a TTL)

A fact is applied only when its (generation, revision) is greater than the stored
one, the same rule as every fact consumer (SPEC §3.5), so totals are the sum over the
current facts whatever the redelivery or order. An attempt event (or a decision's
evidence) is applied only when its (generation, offset in its partition) is greater than
the last applied one; the attempts topic is keyed by user and the decisions topic by
(user, exercise), so the events of one key keep their order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import orjson

from xpbank.contract.identifiers import redis_part
from xpbank.contract.outputs import (
    AttemptCompleted, AttemptDiscarded, AttemptEvent, AttemptOpened, AttemptProgressed, BankingDecided, XpFact,
)

DEFAULT_PREFIX = "xpbank:"


@dataclass(frozen=True)
class Keys:
    prefix: str = DEFAULT_PREFIX

    def fact(self, fact_id: str) -> str:
        return f"{self.prefix}fact:{fact_id}"

    def total(self, user: str) -> str:
        return f"{self.prefix}xp:{redis_part(user)}"

    def by_date(self, user: str) -> str:
        return f"{self.prefix}xp-by-date:{redis_part(user)}"

    def banked(self, user: str) -> str:
        return f"{self.prefix}banked:{redis_part(user)}"

    def active_attempt(self, user: str, exercise: str) -> str:
        """The pointer the web app reads (seed 003): `assess:active:{user}:{exercise}`."""
        return f"{self.prefix}assess:active:{redis_part(user)}:{redis_part(exercise)}"

    def last_attempt_event(self, user: str, exercise: str) -> str:
        return f"{self.prefix}assess:last:{redis_part(user)}:{redis_part(exercise)}"

    def open_attempt(self, user: str, exercise: str) -> str:
        return f"{self.prefix}attempt-open:{redis_part(user)}:{redis_part(exercise)}"

    def done_attempt(self, user: str, exercise: str) -> str:
        return f"{self.prefix}attempt-done:{redis_part(user)}:{redis_part(exercise)}"

    def decision(self, user: str, exercise: str) -> str:
        return f"{self.prefix}decision:{redis_part(user)}:{redis_part(exercise)}"

    def exercises(self, user: str) -> str:
        return f"{self.prefix}exercises:{redis_part(user)}"

    @property
    def meta(self) -> str:
        return f"{self.prefix}meta"

    @property
    def positions(self) -> str:
        return f"{self.prefix}positions"

    @property
    def rebuild_lock(self) -> str:
        return f"{self.prefix}rebuild-lock"

    @property
    def pattern(self) -> str:
        """Every key of these read models (for SCAN); `*` etc. in the prefix are escaped."""
        escaped = "".join(f"\\{c}" if c in "*?[]\\" else c for c in self.prefix)
        return escaped + "*"


@dataclass(frozen=True)
class Upsert:
    script: Literal["fact", "attempt", "decision"]
    keys: tuple[str, ...]
    args: tuple[str | int, ...]
    source: tuple[str, int] | None = None  # (the record's "{topic}/{partition}", its offset + 1)


def position_field(topic: str, partition: int) -> str:
    """A partition's field in the `positions` hash (topic names never hold a `/`)."""
    return f"{topic}/{partition}"


def plan_fact(keys: Keys, fact: XpFact) -> Upsert:
    user = fact.userSourcedId
    return Upsert(
        "fact",
        (keys.fact(fact.factId), keys.total(user), keys.by_date(user), keys.banked(user)),
        (fact.generation, fact.revision, fact.xp, fact.date.isoformat(), user, fact.kind, fact.resourceSourcedId),
    )


ATTEMPT_STATES = {AttemptOpened: "open", AttemptProgressed: "open", AttemptCompleted: "completed",
                  AttemptDiscarded: "discarded"}


def plan_attempt(keys: Keys, event: AttemptEvent, offset: int) -> Upsert:
    """`offset`: the event's offset in its partition of `xp.attempts.v1`. The open and
    completed views are the API's answers, ready to serve."""
    user, exercise = event.userSourcedId, event.exerciseSourcedId
    view = ""
    if isinstance(event, AttemptOpened):
        view = orjson.dumps(open_view(user, exercise, event.attempt, 0, 0, 0, event.totalQuestions)).decode()
    elif isinstance(event, AttemptProgressed):
        view = orjson.dumps(open_view(user, exercise, event.attempt, event.answered, event.correct, event.reported,
                                      event.totalQuestions)).decode()
    elif isinstance(event, AttemptCompleted):
        view = orjson.dumps(completed_view(user, exercise, event.attempt, event.correct, event.total, event.accuracy,
                                           event.exerciseXp, event.mastered)).decode()
    return Upsert(
        "attempt",
        (keys.active_attempt(user, exercise), keys.last_attempt_event(user, exercise),
         keys.open_attempt(user, exercise), keys.done_attempt(user, exercise), keys.exercises(user)),
        (event.generation, offset, ATTEMPT_STATES[type(event)], event.attempt, view, exercise),
    )


def plan_decision(keys: Keys, decided: BankingDecided, offset: int) -> Upsert:
    """`offset`: the evidence's offset in its partition of `xp.decisions.v1`."""
    body = orjson.dumps(decided.explanation().model_dump(mode="json")).decode()
    user, exercise = decided.userSourcedId, decided.exerciseSourcedId
    return Upsert("decision", (keys.decision(user, exercise), keys.exercises(user)),
                  (decided.generation, offset, body, exercise))


def open_view(user: str, exercise: str, attempt: int, answered: int, correct: int, reported: int,
              total_questions: int | None) -> dict:
    """`GET /users/{user}/exercises/{exercise}/attempt` while an attempt is open."""
    return {"userSourcedId": user, "exerciseSourcedId": exercise, "status": "open", "attempt": attempt,
            "answered": answered, "correct": correct, "reported": reported, "totalQuestions": total_questions}


def completed_view(user: str, exercise: str, attempt: int, correct: int, total: int, accuracy: float,
                   exercise_xp: int, mastered: bool) -> dict:
    """... once the last attempt completed (and no other is open)."""
    return {"userSourcedId": user, "exerciseSourcedId": exercise, "status": "completed", "attempt": attempt,
            "answered": total, "correct": correct, "total": total, "accuracy": accuracy, "exerciseXp": exercise_xp,
            "mastered": mastered}


def no_attempt_view(user: str, exercise: str) -> dict:
    """... for an exercise the learner never opened an attempt of (404)."""
    return {"userSourcedId": user, "exerciseSourcedId": exercise, "status": "none", "nextAttempt": 1}


def xp_view(user: str, total: str | bytes | None, by_date: dict) -> dict:
    """`GET /users/{user}/xp` from the raw Redis values."""
    dates = {_text(d): int(v) for d, v in by_date.items() if int(v)}
    return {"userSourcedId": user, "totalXp": int(total or 0), "byDate": dict(sorted(dates.items()))}


def learner_view(user: str, total: str | bytes | None, by_date: dict, banked: dict,
                 exercises: dict[str, tuple[bytes | str | None, bytes | str | None, bytes | str | None]]) -> dict:
    """The web page's learner view from the raw Redis values: the XP view, banked XP per
    resource, and per exercise (sorted) its open and last completed attempt views and its
    banking evidence (each None when absent). `known` is False when Redis holds nothing
    about the learner."""
    rows = [{"exerciseSourcedId": exercise,
             "open": _json(open_), "completed": _json(done), "explanation": _json(evidence)}
            for exercise, (open_, done, evidence) in sorted(exercises.items())]
    resources = {_text(r): int(v) for r, v in banked.items()}
    return {"userSourcedId": user, "known": bool(total is not None or by_date or banked or exercises),
            "xp": xp_view(user, total, by_date), "banked": dict(sorted(resources.items())), "exercises": rows}


def _json(raw: bytes | str | None) -> dict | None:
    return None if raw is None else orjson.loads(raw)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
