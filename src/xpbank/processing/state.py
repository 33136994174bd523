"""Where the per-learner decision state lives. The handlers talk to this protocol; the
simulator keeps it in dicts of objects (never stored), the engines in bytes under the one
key layout of processing/learner_state.py. Values are replaced, never mutated."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

from xpbank.core.attempts import AttemptState
from xpbank.core.banking import MasteryRef, PairState
from xpbank.core.time_spent import PairsView
from xpbank.contract.events import CourseUpserted
from xpbank.contract.identifiers import store_part


class StateStore(Protocol):
    def watermark(self, user: str) -> int | None: ...
    def set_watermark(self, user: str, micros: int) -> None: ...
    def pair(self, user: str, resource: str) -> PairState | None: ...
    def set_pair(self, user: str, resource: str, pair: PairState) -> None: ...
    # a learner's watermark and pairs, read together as a record's heartbeats need them;
    # the pairs to read (before any `set_time_spent` of theirs: they may or may not show
    # later writes), never to change
    def time_spent(self, user: str) -> tuple[int | None, PairsView]: ...
    # a record's changed pairs, and the new watermark (None: unchanged), written together
    def set_time_spent(self, user: str, watermark: int | None, pairs: Mapping[str, PairState]) -> None: ...
    def attempts(self, user: str, exercise: str) -> AttemptState | None: ...
    def set_attempts(self, user: str, exercise: str, state: AttemptState) -> None: ...
    def mastery(self, user: str, exercise: str) -> MasteryRef | None: ...
    def set_mastery(self, user: str, exercise: str, ref: MasteryRef) -> None: ...
    def course(self, course: str) -> CourseUpserted | None: ...
    def set_course(self, course: str, value: CourseUpserted | None) -> None: ...
    def position(self, user: str, source: str) -> int | None: ...
    def set_position(self, user: str, source: str, offset: int) -> None: ...


_NO_PAIRS: Mapping[str, PairState] = MappingProxyType({})


def pair_key(user: str, other: str) -> str:
    """Table key of a per-(user, x) value: the two joined with U+001F, each `store_part`
    (no component holds U+001F, so no two pairs share a key; valid sourcedIds hold no
    control character and keep the key they always had). User-prefixed keys stay
    together in rocksdb."""
    return f"{store_part(user)}\x1f{store_part(other)}"


class MemoryStore:
    """The simulator's state: plain dicts of the core's values, never encoded or stored
    (the engines' layout is processing/learner_state.py's), so a per-(user, x) value is
    keyed by the tuple itself: nothing to escape or join. Pairs are kept by learner, then
    resource, as the engines' bundle keeps them: a record reads one learner's few pairs,
    not one of every learner's in a single large dict."""

    def __init__(self) -> None:
        self.watermarks: dict[str, int] = {}
        self.learner_pairs: dict[str, dict[str, PairState]] = {}  # by learner, then resource
        self.attempt_states: dict[tuple[str, str], AttemptState] = {}
        self.masteries: dict[tuple[str, str], MasteryRef] = {}
        self.courses: dict[str, CourseUpserted] = {}
        self.positions: dict[tuple[str, str], int] = {}

    def watermark(self, user: str) -> int | None:
        return self.watermarks.get(user)

    def set_watermark(self, user: str, micros: int) -> None:
        self.watermarks[user] = micros

    def pair(self, user: str, resource: str) -> PairState | None:
        pairs = self.learner_pairs.get(user)
        return None if pairs is None else pairs.get(resource)

    def set_pair(self, user: str, resource: str, pair: PairState) -> None:
        pairs = self.learner_pairs.get(user)
        if pairs is None:
            self.learner_pairs[user] = {resource: pair}
        else:
            pairs[resource] = pair

    def time_spent(self, user: str) -> tuple[int | None, PairsView]:
        return self.watermarks.get(user), self.learner_pairs.get(user, _NO_PAIRS)

    def set_time_spent(self, user: str, watermark: int | None, pairs: Mapping[str, PairState]) -> None:
        if watermark is not None:
            self.watermarks[user] = watermark
        kept = self.learner_pairs.get(user)
        if kept is None:
            self.learner_pairs[user] = dict(pairs)
        else:
            kept.update(pairs)

    def pairs_of(self, user: str) -> dict[str, PairState]:
        """A learner's pairs by resource (what `xpbank explain` reads)."""
        return dict(self.learner_pairs.get(user, {}))

    def attempts(self, user: str, exercise: str) -> AttemptState | None:
        return self.attempt_states.get((user, exercise))

    def set_attempts(self, user: str, exercise: str, state: AttemptState) -> None:
        self.attempt_states[(user, exercise)] = state

    def mastery(self, user: str, exercise: str) -> MasteryRef | None:
        return self.masteries.get((user, exercise))

    def set_mastery(self, user: str, exercise: str, ref: MasteryRef) -> None:
        self.masteries[(user, exercise)] = ref

    def course(self, course: str) -> CourseUpserted | None:
        return self.courses.get(course)

    def set_course(self, course: str, value: CourseUpserted | None) -> None:
        if value is None:
            self.courses.pop(course, None)
        else:
            self.courses[course] = value

    def position(self, user: str, source: str) -> int | None:
        return self.positions.get((user, source))

    def set_position(self, user: str, source: str, offset: int) -> None:
        self.positions[(user, source)] = offset
