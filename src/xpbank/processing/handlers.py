"""Apply one input record to the state: decode, pick the core function, store the new
state, and return what to publish. `xpbank simulate` and the Faust agents both call
`handle_record`, which is why they make the same decisions."""

from __future__ import annotations

import functools
from collections.abc import Sequence, Set as AbstractSet
from typing import NamedTuple

from pydantic import BaseModel

from xpbank.contract import codec
from xpbank.contract.heartbeats import Heartbeat, decode_heartbeats, heartbeat_of
from xpbank.core.attempts import EMPTY, apply_submission
from xpbank.core.banking import EMPTY_PAIR, bank_mastery, mastery_ref, window_resources
from xpbank.core.evidence import banking_decided, changes_evidence
from xpbank.core.outcome import Outcome, accepted_only
from xpbank.core.rules import Rules
from xpbank.core.time_spent import record_time_spent
from xpbank.contract.events import CourseDeleted, CourseUpserted, ExerciseMastered, TimeSpentEvent
from xpbank.contract.outputs import DeadLetter
from xpbank.contract.records import InputRecord, OutputRecord
from xpbank.processing.hot_path import owner_heartbeats
from xpbank.processing.state import StateStore
from xpbank.contract.topics import DEAD_LETTERS, INPUT_KINDS, route


class Handled(NamedTuple):
    """What one record gave: outputs, counters, and the learners whose events belong on
    another partition. One is built per record, the hot path's straight from the core's
    outcome: `counted` is (name, amount) pairs as the core counted them, a name possibly
    more than once (`counts` sums them)."""

    outputs: Sequence[OutputRecord]
    counted: tuple[tuple[str, int], ...]
    foreign_users: AbstractSet[str]  # events to route to their learner's partition

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name, amount in self.counted:
            counts[name] = counts.get(name, 0) + amount
        return counts


class _Collected:
    """A record's results as the general path gathers them, then `handled()`."""

    __slots__ = ("outputs", "counted", "foreign_users")

    def __init__(self) -> None:
        self.outputs: list[OutputRecord] = []
        self.counted: list[tuple[str, int]] = []
        self.foreign_users: set[str] = set()

    def handled(self) -> Handled:
        return _new_handled(Handled, (self.outputs, tuple(self.counted), self.foreign_users))


_new_handled = tuple.__new__  # Handled(...) without its Python-level __new__: one per record
NO_USERS: frozenset[str] = frozenset()
REDELIVERED = _new_handled(Handled, ((), (("redelivered", 1),), NO_USERS))  # the one a redelivered copy gives


@functools.cache  # one shared per number, as accepted_only shares its Outcome (both immutable)
def _accepted_only(heartbeats: int) -> Handled:
    return _new_handled(Handled, ((), accepted_only(heartbeats).counts, NO_USERS))


def _count(collected: _Collected, name: str) -> None:
    collected.counted.append((name, 1))


def learner_of(event: BaseModel) -> str | None:
    """The learner whose partition owns the event (None: not per-learner, e.g. a course)."""
    if isinstance(event, TimeSpentEvent):
        return event.user
    return getattr(event, "userSourcedId", None)


def handle_record(
    store: StateStore, record: InputRecord, rules: Rules, *, owner: str | None = None, rekeyed: bool = False
) -> Handled:
    """Apply a record. With `owner`, only that learner's events are applied and the other
    learners are listed in `foreign_users`; a `rekeyed` copy skips what the first hop
    already dead-lettered or counted. Without `owner` (simulate) everything is applied."""
    kind = INPUT_KINDS[record.topic]
    # A routed copy is sent again if its first hop is processed again (a crash between
    # sending and storing): the copy's origin position recognises it. Records read in
    # place need no such check: the worker's ledger (continuity.py) skips redeliveries.
    source = record_source(record) if rekeyed and owner is not None else None
    if source is not None:
        last = store.position(owner, source)
        if last is not None and record.offset <= last:
            return REDELIVERED
    handled = None
    if kind == "caliper" and owner is not None:  # the common record, in one pass (hot_path.py)
        accepted = owner_heartbeats(store, record, rules, owner)
        if accepted is not None:
            handled = _accepted_only(accepted)
    if handled is None:
        handled = layered(store, record, rules, owner, rekeyed, kind)
    if source is not None:
        store.set_position(owner, source, record.offset)
    return handled


def layered(store: StateStore, record: InputRecord, rules: Rules, owner: str | None, rekeyed: bool,
            kind: str) -> Handled:
    """Every record through the layers: the decoder's heartbeats, or the models. The
    reference the hot path is tested against (tests/unit/test_hot_path.py)."""
    beats = None if kind != "caliper" else decode_heartbeats(
        record.value, record.timestamp, rules.max_payload_bytes, rules.max_clock_skew_seconds * 1_000_000,
        rules.max_id_length, rules.max_events_per_envelope)
    if beats is None or owner is None or not _all_of(owner, beats):
        return _general(store, record, rules, owner, rekeyed, kind, beats)
    # one learner's valid TimeSpent events on time, on its own partition
    outcome = _apply_time_spent(store, owner, beats, rules)
    if not outcome.outputs and not outcome.rejections:
        return _new_handled(Handled, ((), outcome.counts, NO_USERS))
    collected = _Collected()
    _collect(collected, record, outcome)
    return collected.handled()


def _general(store: StateStore, record: InputRecord, rules: Rules, owner: str | None, rekeyed: bool, kind: str,
             beats: list[Heartbeat] | None) -> Handled:
    """Every record but the hot path's: several learners' heartbeats, or (`beats` None)
    anything the models decide."""
    collected = _Collected()
    if beats is not None and owner is not None:
        if mine := [beat for beat in beats if beat[1] == owner]:  # beat.user
            _collect(collected, record, _apply_time_spent(store, owner, mine, rules))
        if not rekeyed:
            collected.foreign_users.update(beat[1] for beat in beats if beat[1] != owner)
        return collected.handled()
    time_spent: dict[str, list[Heartbeat]] = {}
    if beats is None:
        _decode_and_apply(store, record, rules, owner, rekeyed, collected, kind, time_spent)
    else:
        for beat in beats:
            time_spent.setdefault(beat.user, []).append(beat)
    for user, group in time_spent.items():
        _collect(collected, record, _apply_time_spent(store, user, group, rules))
    return collected.handled()


def _all_of(user: str, beats: list[Heartbeat]) -> bool:
    """Whether every heartbeat is `user`'s (a single event, or an envelope of one learner)."""
    for beat in beats:
        if beat[1] != user:  # beat.user
            return False
    return True


def _decode_and_apply(store: StateStore, record: InputRecord, rules: Rules, owner: str | None, rekeyed: bool,
                      collected: _Collected, kind: str, time_spent: dict[str, list[Heartbeat]]) -> None:
    """Every other record, through the contract models: dead letters, ignored events,
    submissions, masteries and courses are applied here in order; TimeSpent events are
    collected by learner."""
    for result in codec.decode(kind, record.value, record.key, record.timestamp, rules):
        if isinstance(result, codec.Ignored):
            if not rekeyed:
                _count(collected, f"ignored_caliper_type:{result.event_type}")
        elif isinstance(result, codec.Invalid):
            if not rekeyed:
                _dead_letter(collected, record, result.reason, result.detail, result.event_id)
        elif owner is not None and (user := learner_of(result.event)) not in (None, owner):
            if not rekeyed:
                collected.foreign_users.add(user)
        elif isinstance(result.event, TimeSpentEvent):
            time_spent.setdefault(result.event.user, []).append(heartbeat_of(result.event))
        else:
            _collect(collected, record, _apply(store, result.event, rules))


def record_source(record: InputRecord) -> str | None:
    """Where a broker record came from, for redelivery checks (None offline: simulate
    has no redelivery, and a repeated line there is a new record)."""
    if record.partition is None or record.offset is None:
        return None
    return f"{record.topic_full_name or record.topic}:{record.partition}"


def _apply(store: StateStore, event: BaseModel, rules: Rules) -> Outcome:
    if isinstance(event, CourseUpserted):
        store.set_course(event.courseSourcedId, event)
        return Outcome(counts=(("courses_upserted", 1),))
    if isinstance(event, CourseDeleted):
        store.set_course(event.courseSourcedId, None)
        return Outcome(counts=(("courses_deleted", 1),))
    if isinstance(event, ExerciseMastered):
        return _apply_mastery(store, event, rules)
    user, exercise = event.userSourcedId, event.exerciseSourcedId
    before = store.attempts(user, exercise) or EMPTY
    after, outcome = apply_submission(before, event, store.course(event.courseSourcedId), rules)
    if after != before:
        store.set_attempts(user, exercise, after)
    return outcome


def _apply_mastery(store: StateStore, mastery: ExerciseMastered, rules: Rules) -> Outcome:
    user, exercise = mastery.userSourcedId, mastery.exerciseSourcedId
    course = store.course(mastery.courseSourcedId)
    pairs = {rid: store.pair(user, rid) or EMPTY_PAIR for rid in window_resources(course, exercise)}
    changed, outcome = bank_mastery(pairs, mastery, course, rules)
    for rid, pair in changed.items():
        if pair != pairs[rid]:
            store.set_pair(user, rid, pair)
    if outcome.rejections:
        return outcome
    ref = mastery_ref(mastery)
    store.set_mastery(user, exercise, ref)
    decided = banking_decided(user, exercise, ref, course, pairs | changed, mastery.id, rules)
    return outcome + Outcome(outputs=(decided,))


def _evidence(store: StateStore, outcome: Outcome, rules: Rules) -> Outcome:
    """Publish again the evidence of the masteries whose counted time this record changed
    (a late heartbeat, up to their T): read the mastery, the course and the pairs."""
    causes: dict[tuple[str, str], tuple[list[int], str]] = {}
    for user, exercise, t_us, event_id in outcome.evidence:
        times, _ = causes.get((user, exercise), ([], event_id))
        causes[(user, exercise)] = ([*times, t_us], event_id)  # the last event is the cause
    decided = []
    for (user, exercise), (times, cause) in causes.items():
        ref = store.mastery(user, exercise)
        if changes_evidence(ref, times):
            course = store.course(ref.courseSourcedId)
            pairs = {rid: store.pair(user, rid) or EMPTY_PAIR for rid in window_resources(course, exercise)}
            decided.append(banking_decided(user, exercise, ref, course, pairs, cause, rules))
    return Outcome(outputs=tuple(decided))


def _apply_time_spent(store: StateStore, user: str, beats: list[Heartbeat], rules: Rules) -> Outcome:
    before, pairs = store.time_spent(user)
    watermark, changed, outcome = record_time_spent(before, pairs, beats, rules, user)
    if changed or watermark != before:
        store.set_time_spent(user, None if watermark == before else watermark, changed)
    return outcome + _evidence(store, outcome, rules) if outcome.evidence else outcome


def _collect(collected: _Collected, record: InputRecord, outcome: Outcome) -> None:
    outputs, rejections, counted, _ = outcome
    for output in outputs:
        topic, key = route(output)
        collected.outputs.append(OutputRecord(topic, key, output, record.timestamp))
    for rejection in rejections:
        _dead_letter(collected, record, rejection.reason, rejection.detail, rejection.event_id)
    collected.counted += counted


def _dead_letter(collected: _Collected, record: InputRecord, reason: str, detail: str, event_id: str | None) -> None:
    payload, encoding = codec.payload_text(record.value)
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    letter = DeadLetter(
        reason=reason,
        detail=detail,
        topic=record.topic_full_name or record.topic,
        partition=record.partition,
        offset=record.offset,
        key=key,
        timestamp=record.timestamp,
        eventId=event_id,
        payload=payload,
        payloadEncoding=encoding,
    )
    collected.outputs.append(OutputRecord(DEAD_LETTERS, key, letter, record.timestamp))
    _count(collected, f"dead_letters:{reason}")
