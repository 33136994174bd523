"""The one key layout of the decision state, on every engine, and the `StateStore` over it.

A learner's keys share one prefix, their sourcedId length-prefixed (no two learners'
prefixes can meet), joined to a kind tag and the other id by `|`: Quix Streams joins a
store key's prefix and key so, and the Faust engine's one table uses the same bytes as
its keys; so a changelog record means the same on both engines. Values are the state
codec's, each starting with a non-zero version byte (Quix's restore misreads values
that start with an 8-byte epoch timestamp as TTL stamps).

An engine hands over a `StatePort` of one partition: bytes in, bytes out. Layouts
written by earlier versions are read through `processing/upcast.py`."""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from xpbank.contract.events import CourseUpserted
from xpbank.core.attempts import AttemptState
from xpbank.core.banking import MasteryRef, PairState
from xpbank.processing import state_codec

SEPARATOR = b"|"  # between a key's prefix and the rest (Quix Streams' own separator)
WATERMARK, PAIR, ATTEMPTS, MASTERY, POSITION = b"w", b"p:", b"a:", b"m:", b"o:"
# a partition's outbox (runtime/outbox.py): under a prefix no learner's can be (a
# learner's starts with its id's length, and an empty id is never a learner)
OUTBOX_PREFIX = b"\x00\x00\x00\x00"

encode_int, decode_int = state_codec.encode_int, state_codec.decode_int


def learner_prefix(user: str) -> bytes:
    raw = user.encode("utf-8")
    return len(raw).to_bytes(4, "big") + raw


def outbox_key(partition: int) -> bytes:
    """Named after its partition: a Faust memory store keeps every partition in one dict."""
    return b"\x00outbox:%d" % partition


# what an operator sees a stored key as (the metric `xpbank_table_keys{table=...}`): the
# names of the five tables the layout replaced
KINDS = {WATERMARK[:1]: "watermarks", PAIR[:1]: "pairs", ATTEMPTS[:1]: "attempts", MASTERY[:1]: "masteries",
         POSITION[:1]: "positions"}


def key_kind(stored: bytes) -> str:
    """The kind of a stored key: one of KINDS' names, "outbox", or "other"."""
    if stored.startswith(OUTBOX_PREFIX):
        return "outbox"
    at = 4 + int.from_bytes(stored[:4], "big") + len(SEPARATOR)
    return KINDS.get(stored[at:at + 1], "other")


def count_kinds(stored_keys) -> dict[str, int]:
    return dict(Counter(map(key_kind, stored_keys)))


def full_key(prefix: bytes, key: bytes) -> bytes:
    """The key as stored (what Quix Streams writes for `key` under `prefix`)."""
    return prefix + SEPARATOR + key


class StatePort(Protocol):
    """One partition's state as bytes. A Quix Streams partition transaction is one."""

    def get_bytes(self, key: bytes, prefix: bytes) -> bytes | None: ...
    def set_bytes(self, key: bytes, value: bytes, prefix: bytes) -> None: ...


class DictPort:
    """A partition's state in a dict of stored keys (tests, and the golden corpora)."""

    def __init__(self, data: dict[bytes, bytes] | None = None) -> None:
        self.data = {} if data is None else data

    def get_bytes(self, key: bytes, prefix: bytes) -> bytes | None:
        return self.data.get(full_key(prefix, key))

    def set_bytes(self, key: bytes, value: bytes, prefix: bytes) -> None:
        self.data[full_key(prefix, key)] = value


class LearnerState:
    """The `StateStore` of `handle_record` on a partition's port; courses come from the
    curriculum view (every worker follows the curriculum topic itself)."""

    __slots__ = ("port", "courses")

    def __init__(self, port: StatePort | None, courses) -> None:
        self.port, self.courses = port, courses

    def _get(self, user: str, key: bytes) -> bytes | None:
        return self.port.get_bytes(key, prefix=learner_prefix(user))

    def _set(self, user: str, key: bytes, value: bytes) -> None:
        self.port.set_bytes(key, value, prefix=learner_prefix(user))

    def watermark(self, user: str) -> int | None:
        raw = self._get(user, WATERMARK)
        return None if raw is None else decode_int(raw)

    def set_watermark(self, user: str, micros: int) -> None:
        self._set(user, WATERMARK, encode_int(micros))

    def pair(self, user: str, resource: str) -> PairState | None:
        raw = self._get(user, PAIR + resource.encode("utf-8"))
        return None if raw is None else state_codec.decode_pair(raw)

    def set_pair(self, user: str, resource: str, pair: PairState) -> None:
        self._set(user, PAIR + resource.encode("utf-8"), state_codec.encode_pair(pair))

    def attempts(self, user: str, exercise: str) -> AttemptState | None:
        raw = self._get(user, ATTEMPTS + exercise.encode("utf-8"))
        return None if raw is None else state_codec.decode_attempts(raw)

    def set_attempts(self, user: str, exercise: str, state: AttemptState) -> None:
        self._set(user, ATTEMPTS + exercise.encode("utf-8"), state_codec.encode_attempts(state))

    def mastery(self, user: str, exercise: str) -> MasteryRef | None:
        raw = self._get(user, MASTERY + exercise.encode("utf-8"))
        return None if raw is None else state_codec.decode_mastery_ref(raw)

    def set_mastery(self, user: str, exercise: str, ref: MasteryRef) -> None:
        self._set(user, MASTERY + exercise.encode("utf-8"), state_codec.encode_mastery_ref(ref))

    def position(self, user: str, source: str) -> int | None:
        raw = self._get(user, POSITION + source.encode("utf-8"))
        return None if raw is None else decode_int(raw)

    def set_position(self, user: str, source: str, offset: int) -> None:
        self._set(user, POSITION + source.encode("utf-8"), encode_int(offset))

    def course(self, course: str) -> CourseUpserted | None:
        return self.courses.get(course)

    def set_course(self, course: str, value: CourseUpserted | None) -> None:
        """Nothing to do: every worker's curriculum view follows the topic itself."""
