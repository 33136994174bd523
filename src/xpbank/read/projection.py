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
  (`rebuilding` / `ready`), `since`, `reason`, `server` (the run id of the Redis server
  they were checked on): absent means the read models were lost (or never built), and
  readers answer 503 until a rebuild is done
- `positions`                        hash: `{topic}/{partition}` -> the next offset to project,
  written after each batch the projector applied, by a script that runs only on the
  server the read models were checked on, so whatever Redis keeps (a replica, a
  restored snapshot) holds every record before its positions and says from where to
  project again
- `rebuild-lock`                     the projector rebuilding holds it (SET NX with a TTL)

On a Redis Cluster (`redis+cluster://`, `Keys(cluster=True)`) a learner's component is a
hash tag (`xp:{learner-7}`, `fact:{learner-7}:<factId>`), so all of a learner's keys share a
hash slot and every script runs on one node. Each slot has its own `meta:{tag}` hash (the
tag hashes to that slot), the guard of the scripts and reads of that slot; `meta` then
holds the rebuild's state and reason, and each shard keeps its `positions` in
`positions:{tag}` beside the meta of its first slot (read_models.py).

A fact is applied only when its (generation, revision) is greater than the stored
one, the same rule as every fact consumer (SPEC §3.5), so totals are the sum over the
current facts whatever the redelivery or order. An attempt event (or a decision's
evidence) is applied only when its (generation, offset in its partition) is greater than
the last applied one; the attempts topic is keyed by user and the decisions topic by
(user, exercise), so the events of one key keep their order."""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from functools import cache
from typing import Literal

import orjson

from xpbank.contract.identifiers import redis_part
from xpbank.contract.outputs import (
    AttemptCompleted, AttemptDiscarded, AttemptEvent, AttemptOpened, AttemptProgressed, BankingDecided, XpFact,
)

DEFAULT_PREFIX = "xpbank:"
SLOTS = 16384  # hash slots of a Redis Cluster


@dataclass(frozen=True)
class Keys:
    prefix: str = DEFAULT_PREFIX
    cluster: bool = False  # a Redis Cluster: each learner's keys in one hash slot

    def _user(self, user: str) -> str:
        """A learner's component of a key; on a cluster a hash tag, so every key of a
        learner (and the meta guarding them) is in one slot (`redis_part` encodes `{`, `}`)."""
        return f"{{{redis_part(user)}}}" if self.cluster else redis_part(user)

    def fact(self, fact_id: str, user: str) -> str:
        return f"{self.prefix}fact:{self._user(user)}:{fact_id}" if self.cluster else f"{self.prefix}fact:{fact_id}"

    def total(self, user: str) -> str:
        return f"{self.prefix}xp:{self._user(user)}"

    def by_date(self, user: str) -> str:
        return f"{self.prefix}xp-by-date:{self._user(user)}"

    def banked(self, user: str) -> str:
        return f"{self.prefix}banked:{self._user(user)}"

    def active_attempt(self, user: str, exercise: str) -> str:
        """The pointer the web app reads (seed 003): `assess:active:{user}:{exercise}`."""
        return f"{self.prefix}assess:active:{self._user(user)}:{redis_part(exercise)}"

    def last_attempt_event(self, user: str, exercise: str) -> str:
        return f"{self.prefix}assess:last:{self._user(user)}:{redis_part(exercise)}"

    def open_attempt(self, user: str, exercise: str) -> str:
        return f"{self.prefix}attempt-open:{self._user(user)}:{redis_part(exercise)}"

    def done_attempt(self, user: str, exercise: str) -> str:
        return f"{self.prefix}attempt-done:{self._user(user)}:{redis_part(exercise)}"

    def decision(self, user: str, exercise: str) -> str:
        return f"{self.prefix}decision:{self._user(user)}:{redis_part(exercise)}"

    def exercises(self, user: str) -> str:
        return f"{self.prefix}exercises:{self._user(user)}"

    def slot_meta(self, key: str) -> str:
        """The meta hash that guards `key` (scripts and reads check it in the same slot):
        `meta` on one Redis, the meta of the key's hash slot on a cluster."""
        return f"{self.prefix}meta:{{{slot_tag(key_slot(key))}}}" if self.cluster else self.meta

    def slot_metas(self) -> list[str]:
        """Every slot's meta (one Redis: `meta` alone)."""
        return [f"{self.prefix}meta:{{{slot_tag(slot)}}}" for slot in range(SLOTS)] if self.cluster else [self.meta]

    def shard(self, slot: int) -> tuple[str, str]:
        """(meta, positions) of the shard whose first slot is `slot` (one Redis: meta, positions)."""
        if not self.cluster:
            return self.meta, self.positions
        return f"{self.prefix}meta:{{{slot_tag(slot)}}}", f"{self.prefix}positions:{{{slot_tag(slot)}}}"

    def kept_by_clear(self, key: bytes) -> bool:
        """The keys a rebuild keeps: the metas (they hold its epoch) and the lock."""
        return key in (self.meta.encode(), self.rebuild_lock.encode()) or key.startswith(f"{self.prefix}meta:{{".encode())

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


def key_slot(key: str) -> int:
    """The Redis Cluster hash slot of a key: CRC16 of its hash tag (the text between the
    first `{` and the next `}`, when not empty), else of the whole key."""
    raw = key.encode()
    start = raw.find(b"{")
    if start >= 0:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1:end]
    return binascii.crc_hqx(raw, 0) % SLOTS


@cache
def _slot_tags() -> tuple[str, ...]:
    found: dict[int, str] = {}
    number = 0
    while len(found) < SLOTS:
        found.setdefault(binascii.crc_hqx(str(number).encode(), 0) % SLOTS, str(number))
        number += 1
    return tuple(found[slot] for slot in range(SLOTS))


def slot_tag(slot: int) -> str:
    """The smallest decimal number whose hash slot is `slot`: a hash tag that puts a key there."""
    return _slot_tags()[slot]


@dataclass(frozen=True)
class Upsert:
    script: Literal["fact", "attempt", "decision"]
    keys: tuple[str, ...]
    args: tuple[str | int, ...]


def position_field(topic: str, partition: int) -> str:
    """A partition's field in the `positions` hash (topic names never hold a `/`)."""
    return f"{topic}/{partition}"


def plan_fact(keys: Keys, fact: XpFact) -> Upsert:
    user = fact.userSourcedId
    return Upsert(
        "fact",
        (keys.fact(fact.factId, user), keys.total(user), keys.by_date(user), keys.banked(user)),
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
