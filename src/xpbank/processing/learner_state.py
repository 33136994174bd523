"""The one key layout of the decision state, on every engine, and the `StateStore` over it.

A learner's keys share one prefix, their sourcedId length-prefixed (no two learners'
prefixes can meet), joined to a kind tag and the other id by `|`: Quix Streams joins a
store key's prefix and key so, and the Faust engine's one table uses the same bytes as
its keys; so a changelog record means the same on both engines. Values are the state
codec's, each starting with a non-zero version byte (Quix's restore misreads values
that start with an 8-byte epoch timestamp as TTL stamps).

An engine hands over a `StatePort` of one partition: bytes in, bytes out. A partition's
`LearnerState` keeps the values it read and wrote decoded between checkpoints, and
writes each changed one once per checkpoint. Layouts written by earlier versions are
read through `processing/upcast.py`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from functools import lru_cache
from itertools import islice
from typing import Protocol

from xpbank.contract.events import CourseUpserted
from xpbank.core.attempts import AttemptState
from xpbank.core.banking import MasteryRef, PairState
from xpbank.processing import state_codec

SEPARATOR = b"|"  # between a key's prefix and the rest (Quix Streams' own separator)
WATERMARK, PAIR, ATTEMPTS, MASTERY, POSITION = b"w", b"p:", b"a:", b"m:", b"o:"
BUNDLE = b"b"  # a learner's watermark and small pairs (decisions.md 23)
# a partition's outbox (runtime/outbox.py): under a prefix no learner's can be (a
# learner's starts with its id's length, and an empty id is never a learner)
OUTBOX_PREFIX = b"\x00\x00\x00\x00"

encode_int, decode_int = state_codec.encode_int, state_codec.decode_int


@lru_cache(maxsize=1 << 16)  # learners recur from record to record
def learner_prefix(user: str) -> bytes:
    raw = user.encode("utf-8")
    return len(raw).to_bytes(4, "big") + raw


def outbox_key(partition: int) -> bytes:
    """Named after its partition: a Faust memory store keeps every partition in one dict."""
    return b"\x00outbox:%d" % partition


# what an operator sees a stored key as (the metric `xpbank_table_keys{table=...}`): the
# names of the five tables the layout replaced
KINDS = {WATERMARK[:1]: "watermarks", PAIR[:1]: "pairs", ATTEMPTS[:1]: "attempts", MASTERY[:1]: "masteries",
         POSITION[:1]: "positions", BUNDLE: "bundles"}


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


# the decoded values and bundled pairs a partition's LearnerState keeps between
# checkpoints (a clean one is read again from the store once evicted): bounds its
# memory (about 25 MB, docs/scaling.md), not its correctness
CACHED_VALUES = 100_000
# A learner's watermark and small pairs share one key, the bundle (decisions.md 23): a
# record's heartbeats change one stored value, not one per resource. A pair joins it
# while it is at most PAIR_LIMIT bytes encoded (~30 heartbeats), and the bundle keeps at
# most BUNDLE_LIMIT bytes of pairs (past it, the largest go to their own keys until it is
# half that): every stored value stays small, whatever a learner's history.
PAIR_LIMIT = 1024
BUNDLE_LIMIT = 16 * 1024
_CODECS = {
    WATERMARK: (decode_int, encode_int),
    PAIR: (state_codec.decode_pair, state_codec.encode_pair),
    ATTEMPTS: (state_codec.decode_attempts, state_codec.encode_attempts),
    MASTERY: (state_codec.decode_mastery_ref, state_codec.encode_mastery_ref),
    POSITION: (decode_int, encode_int),
}
_BUNDLED = (WATERMARK, PAIR)
_ABSENT = object()  # not kept (None is kept: the store has nothing)
Slot = tuple[bytes, str, str]  # (kind, learner, the other id; "" for the watermark)


class LearnerState:
    """The `StateStore` of `handle_record` on one partition's port, kept across records:
    each value is read from the port and decoded once, kept decoded, and encoded and
    written once per checkpoint (`write_back`), however many records changed it. Courses
    come from the curriculum view (every worker follows the curriculum topic itself).

    A learner's watermark and small pairs are stored together in their bundle; a pair
    in the bundle shadows its own key (written before it grew or before the bundle
    existed), and the bundle's watermark the old `w` key.

    A record's writes are its own until `keep` (its outputs and copies are sent by then):
    a record whose sends failed is `discard`ed and applied again against the state it
    found. The engine sets `port` to the partition's current one before each record
    (Quix's is the checkpoint's transaction) and calls `write_back` into the checkpoint
    it commits; a partition revoked or lost drops its LearnerState (another worker may
    change it)."""

    __slots__ = ("port", "courses", "record", "values", "dirty", "bundles", "own")

    def __init__(self, port: StatePort | None, courses) -> None:
        self.port, self.courses = port, courses
        self.record: dict[Slot, object] = {}  # the current record's writes, until `keep`
        self.values: dict[Slot, object] = {}  # decoded, None where the store has nothing
        self.dirty: dict[Slot, None] = {}  # kept since the last write_back, in order
        self.bundles: dict[str, dict[str, bytes]] = {}  # per learner read: its bundle's items by resource
        self.own: set[Slot] = set()  # pairs stored under their own key

    def _get(self, kind: bytes, user: str, other: str):
        slot = (kind, user, other)
        value = self.record.get(slot, _ABSENT)
        return self._kept(slot, kind, user, other) if value is _ABSENT else value

    def _kept(self, slot: Slot, kind: bytes, user: str, other: str):
        """The value as kept (the current record's writes aside), read from the store once."""
        value = self.values.get(slot, _ABSENT)
        return self._read(slot, kind, user, other) if value is _ABSENT else value

    def _read(self, slot: Slot, kind: bytes, user: str, other: str):
        """A value not kept: from its learner's bundle, else its own key (kept either way)."""
        values = self.values
        if kind in _BUNDLED:
            bundle = self._bundle(user)
            if kind == PAIR:
                item = bundle.get(other)
                if item is not None:
                    value = values[slot] = state_codec.decode_pair(state_codec.item_pair(item))
                    return value
            elif slot in values:  # the bundle's watermark
                return values[slot]
        raw = self.port.get_bytes(kind + other.encode("utf-8"), prefix=learner_prefix(user))
        if raw is not None and kind == PAIR:
            self.own.add(slot)
        value = values[slot] = None if raw is None else _CODECS[kind][0](raw)
        return value

    def _bundle(self, user: str) -> dict[str, bytes]:
        """The learner's bundle, read once: its watermark joins the kept values (never
        over a kept one: that is at least as new); its pairs are decoded when read."""
        bundle = self.bundles.get(user)
        if bundle is None:
            raw = self.port.get_bytes(BUNDLE, prefix=learner_prefix(user))
            if raw is None:
                bundle = self.bundles[user] = {}
            else:
                watermark, bundle = state_codec.decode_bundle(raw)
                self.bundles[user] = bundle
                self.values.setdefault((WATERMARK, user, ""), watermark)
        return bundle

    def keep(self) -> int:
        """The current record's writes join the next checkpoint's; returns how many."""
        record = self.record
        if record:
            self.values.update(record)
            self.dirty.update(dict.fromkeys(record))
            self.record = {}
        return len(record)

    def discard(self) -> None:
        """Forget the current record's writes."""
        self.record = {}

    def write_back(self, port: StatePort | None = None) -> int:
        """Write every value kept since the last call to `port` (default: the current
        one), once each, positions last (a stored position says its record's other
        effects are stored); returns how many keys were written. Then keeps at most
        CACHED_VALUES."""
        port = self.port if port is None else port
        values = self.values
        learners: dict[str, list[str]] = {}  # the learners whose watermark or pairs changed: those pairs
        later: list[Slot] = []
        for slot in self.dirty:
            kind, user, other = slot
            if kind == PAIR:
                learners.setdefault(user, []).append(other)
            elif kind == WATERMARK:
                learners.setdefault(user, [])
            else:
                later.append(slot)
        written = sum(self._write_learner(port, user, resources) for user, resources in learners.items())
        later.sort(key=lambda slot: slot[0] == POSITION)  # positions last (a stable sort keeps the order)
        for kind, user, other in later:
            port.set_bytes(kind + other.encode("utf-8"), _CODECS[kind][1](values[(kind, user, other)]),
                           prefix=learner_prefix(user))
        self.dirty = {}
        bundled = sum(map(len, self.bundles.values()))  # pairs kept encoded too, in bundles
        if len(values) + bundled > CACHED_VALUES:  # none is dirty now: the longest kept go first
            for slot in list(islice(values, max(len(values) - CACHED_VALUES // 2, 0))):
                del values[slot]
            self.bundles, self.own = {}, set()  # read again with the values they describe
        return written + len(later)

    def _write_learner(self, port: StatePort, user: str, resources: list[str]) -> int:
        """A learner's changed pairs and, if it changed, its bundle (read through the
        current port if not yet read); returns how many keys were written."""
        values, own, prefix = self.values, self.own, learner_prefix(user)
        bundle = self._bundle(user)
        changed = (WATERMARK, user, "") in self.dirty
        written, joined = 0, False
        for resource in resources:
            slot = (PAIR, user, resource)
            pair = state_codec.encode_pair(values[slot])
            if slot in own or len(pair) > PAIR_LIMIT:
                port.set_bytes(PAIR + resource.encode("utf-8"), pair, prefix=prefix)
                own.add(slot)
                written += 1
                changed |= bundle.pop(resource, None) is not None
            else:
                joined |= resource not in bundle
                bundle[resource] = state_codec.bundle_item(resource, pair)
                changed = True
        if joined:  # a bundle's items stay sorted by resource
            bundle = self.bundles[user] = dict(sorted(bundle.items()))
        if not changed:
            return written
        watermark = self._kept((WATERMARK, user, ""), WATERMARK, user, "")
        encoded = state_codec.encode_bundle(watermark, bundle)
        if len(encoded) > BUNDLE_LIMIT + state_codec.BUNDLE_HEADER_SIZE:  # the largest pairs to their own keys
            size = len(encoded) - state_codec.BUNDLE_HEADER_SIZE
            for resource in sorted(bundle, key=lambda r: (-len(bundle[r]), r)):
                item = bundle.pop(resource)
                port.set_bytes(PAIR + resource.encode("utf-8"), state_codec.item_pair(item), prefix=prefix)
                own.add((PAIR, user, resource))
                written, size = written + 1, size - len(item)
                if size <= BUNDLE_LIMIT // 2:
                    break
            encoded = state_codec.encode_bundle(watermark, bundle)
        port.set_bytes(BUNDLE, encoded, prefix=prefix)
        return written + 1

    def watermark(self, user: str) -> int | None:
        return self._get(WATERMARK, user, "")

    def set_watermark(self, user: str, micros: int) -> None:
        self.record[(WATERMARK, user, "")] = micros

    def pair(self, user: str, resource: str) -> PairState | None:
        return self._get(PAIR, user, resource)

    def set_pair(self, user: str, resource: str, pair: PairState) -> None:
        self.record[(PAIR, user, resource)] = pair

    def time_spent(self, user: str) -> tuple[int | None, _LearnerPairs]:
        return self._get(WATERMARK, user, ""), _LearnerPairs(self, user)

    def set_time_spent(self, user: str, watermark: int | None, pairs: Mapping[str, PairState]) -> None:
        record = self.record
        if watermark is not None:
            record[(WATERMARK, user, "")] = watermark
        for resource, pair in pairs.items():
            record[(PAIR, user, resource)] = pair

    def attempts(self, user: str, exercise: str) -> AttemptState | None:
        return self._get(ATTEMPTS, user, exercise)

    def set_attempts(self, user: str, exercise: str, state: AttemptState) -> None:
        self.record[(ATTEMPTS, user, exercise)] = state

    def mastery(self, user: str, exercise: str) -> MasteryRef | None:
        return self._get(MASTERY, user, exercise)

    def set_mastery(self, user: str, exercise: str, ref: MasteryRef) -> None:
        self.record[(MASTERY, user, exercise)] = ref

    def position(self, user: str, source: str) -> int | None:
        return self._get(POSITION, user, source)

    def set_position(self, user: str, source: str, offset: int) -> None:
        self.record[(POSITION, user, source)] = offset

    def course(self, course: str) -> CourseUpserted | None:
        return self.courses.get(course)

    def set_course(self, course: str, value: CourseUpserted | None) -> None:
        """Nothing to do: every worker's curriculum view follows the topic itself."""


class _LearnerPairs:
    """A learner's pairs as `LearnerState.time_spent` reads them: each read as `pair` reads it,
    the current record's writes included."""

    __slots__ = ("state", "user")

    def __init__(self, state: LearnerState, user: str) -> None:
        self.state, self.user = state, user

    def get(self, resource: str, default: PairState) -> PairState:
        pair = self.state.pair(self.user, resource)
        return default if pair is None else pair
