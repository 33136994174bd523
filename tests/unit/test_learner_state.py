"""A partition's LearnerState keeps its values decoded between checkpoints: each is read
from the port once and written to it once per checkpoint, positions last; a learner's
watermark and small pairs share one key (the bundle); and the decisions depend neither
on when the checkpoints fall nor on which pairs are in a bundle."""

from __future__ import annotations

import itertools
import random

import orjson
import pytest

from tests.golden.corpus import WorkerPath, classroom_records
from xpbank.core.banking import EMPTY_PAIR, PairState
from xpbank.core.read_time import entry
from xpbank.core.rules import Rules
from xpbank.processing import learner_state, state_codec
from xpbank.processing.learner_state import DictPort, LearnerState, full_key, learner_prefix
from xpbank.processing.state import MemoryStore


class CountingPort(DictPort):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[bytes] = []
        self.writes: list[bytes] = []

    def get_bytes(self, key: bytes, prefix: bytes) -> bytes | None:
        self.reads.append(full_key(prefix, key))
        return super().get_bytes(key, prefix)

    def set_bytes(self, key: bytes, value: bytes, prefix: bytes) -> None:
        self.writes.append(full_key(prefix, key))
        super().set_bytes(key, value, prefix)


def test_a_value_is_read_once_and_written_once_per_checkpoint():
    port = CountingPort()
    state = LearnerState(port, {})
    for micros in range(100):
        state.watermark("ada")
        state.set_watermark("ada", micros)
        state.set_pair("ada", "r1", EMPTY_PAIR)
        state.position("ada", "src:0")
        state.set_position("ada", "src:0", micros)
        state.keep()  # one record
    prefix = learner_prefix("ada")
    # the watermark (the bundle, then the key it had before bundles) and the position: the
    # pair was set before any read
    assert port.reads == [full_key(prefix, k) for k in (b"b", b"w", b"o:src:0")]
    assert port.writes == []  # nothing before the checkpoint
    assert state.write_back() == 2
    assert port.writes == [full_key(prefix, b"b"), full_key(prefix, b"o:src:0")]  # the bundle holds both; the position last
    assert state.write_back() == 0  # nothing changed since
    again = LearnerState(port, {})  # a worker that reads the partition afresh
    assert (again.watermark("ada"), again.pair("ada", "r1"), again.position("ada", "src:0")) == (99, EMPTY_PAIR, 99)


def test_a_missing_value_is_looked_up_once():
    port = CountingPort()
    state = LearnerState(port, {})
    assert [state.pair("ada", "r1") for _ in range(3)] == [None] * 3
    assert len(port.reads) == 2  # the bundle, the pair's own key


def test_beyond_its_bound_it_forgets_the_oldest_clean_values(monkeypatch):
    monkeypatch.setattr(learner_state, "CACHED_VALUES", 10)
    port = CountingPort()
    state = LearnerState(port, {})
    for n in range(12):
        state.set_watermark(f"u{n}", n)
        state.keep()
    assert len(state.values) == 12  # dirty values are never forgotten
    state.write_back()
    assert len(state.values) == 5 and ("w", "u0", "") not in {(k.decode(), u, o) for k, u, o in state.values}
    assert state.watermark("u0") == 0  # read again from the store
    assert port.reads[-1] == full_key(learner_prefix("u0"), b"b")


def test_pairs_kept_encoded_in_bundles_count_towards_the_bound(monkeypatch):
    monkeypatch.setattr(learner_state, "CACHED_VALUES", 12)
    port = DictPort()
    state = LearnerState(port, {})
    for n in range(8):
        state.set_pair("ada", f"r{n}", _pair(1))
    state.keep()
    state.write_back()  # 8 pairs and the watermark's lookup kept, and 8 pairs in the bundle: 17
    assert state.bundles == {} and len(state.values) == 6
    assert LearnerState(port, {}).pair("ada", "r0") == state.pair("ada", "r0") == _pair(1)


def _pair(events: int) -> PairState:
    return PairState(b"".join(entry(n, 1000, n.to_bytes(16, "big")) for n in range(events)))


def _stored(port: DictPort) -> dict[bytes, bytes]:
    return {key.rsplit(b"|", 1)[1]: value for key, value in port.data.items()}


def test_a_learners_watermark_and_small_pairs_are_one_key_and_read_back_the_same():
    port = CountingPort()
    state = LearnerState(port, {})
    state.set_watermark("ada", 7)
    pairs = {"r1": _pair(1), "ré/2": _pair(3), "r3": EMPTY_PAIR}
    for resource, pair in pairs.items():
        state.set_pair("ada", resource, pair)
    state.keep()
    assert state.write_back() == 1 and port.writes == [full_key(learner_prefix("ada"), b"b")]
    again = LearnerState(CountingPort(), {})
    again.port.data = port.data
    assert again.watermark("ada") == 7 and {r: again.pair("ada", r) for r in pairs} == pairs
    assert again.port.reads == [full_key(learner_prefix("ada"), b"b")]  # one read for all of them
    reverse = LearnerState(DictPort(), {})  # the same state, its pairs set in another order: the same bytes
    reverse.set_watermark("ada", 7)
    for resource in reversed(pairs):
        reverse.set_pair("ada", resource, pairs[resource])
        reverse.keep()
        reverse.write_back()
    assert reverse.port.data == port.data
    item = state_codec.bundle_item("é", b"x")
    assert state_codec.decode_bundle(state_codec.encode_bundle(None, {"é": item})) == (None, {"é": item})
    assert state_codec.item_pair(item) == b"x"


def test_a_pair_past_its_limit_moves_to_its_own_key_and_the_bundle_shadows_an_older_one(monkeypatch):
    monkeypatch.setattr(learner_state, "PAIR_LIMIT", 100)  # a pair of up to 2 entries
    port = DictPort()
    state = LearnerState(port, {})
    state.set_pair("ada", "r1", _pair(2))
    state.keep()
    state.write_back()
    assert set(_stored(port)) == {b"b"}
    state.set_pair("ada", "r1", _pair(3))
    state.keep()
    assert state.write_back() == 2 and set(_stored(port)) == {b"b", b"p:r1"}
    assert state_codec.decode_bundle(_stored(port)[b"b"])[1] == {}  # no longer in the bundle
    assert LearnerState(port, {}).pair("ada", "r1") == _pair(3)
    # a pair in the bundle is newer than its own key (written before the bundle had it)
    stale = DictPort({full_key(learner_prefix("ada"), b"p:r1"): state_codec.encode_pair(_pair(1))})
    newer = state_codec.bundle_item("r1", state_codec.encode_pair(_pair(2)))
    stale.set_bytes(b"b", state_codec.encode_bundle(3, {"r1": newer}), learner_prefix("ada"))
    assert LearnerState(stale, {}).pair("ada", "r1") == _pair(2)


def test_a_bundle_past_its_limit_sends_its_largest_pairs_to_their_own_keys(monkeypatch):
    monkeypatch.setattr(learner_state, "BUNDLE_LIMIT", 400)
    port = DictPort()
    state = LearnerState(port, {})
    pairs = {f"r{n}": _pair(n % 4) for n in range(12)}
    for resource, pair in pairs.items():
        state.set_pair("ada", resource, pair)
    state.keep()
    state.write_back()
    bundled = {r: len(item) for r, item in state_codec.decode_bundle(_stored(port)[b"b"])[1].items()}
    own = {key[2:].decode() for key in _stored(port) if key.startswith(b"p:")}
    assert sum(bundled.values()) <= 200 and own and own.isdisjoint(bundled) and own | set(bundled) == set(pairs)
    assert min(len(state_codec.bundle_item(r, state_codec.encode_pair(pairs[r]))) for r in own) >= max(bundled.values())
    fresh = LearnerState(port, {})
    assert {r: fresh.pair("ada", r) for r in pairs} == pairs


def test_a_state_stored_before_bundles_is_read_and_its_watermark_moves_into_the_bundle():
    prefix = learner_prefix("ada")
    port = DictPort({full_key(prefix, b"w"): state_codec.encode_int(5),
                     full_key(prefix, b"p:r1"): state_codec.encode_pair(_pair(1))})
    state = LearnerState(port, {})
    assert state.watermark("ada") == 5 and state.pair("ada", "r1") == _pair(1)
    state.set_watermark("ada", 6)
    state.set_pair("ada", "r1", _pair(2))
    state.keep()
    assert state.write_back() == 2  # the bundle (the watermark) and the pair, still under its own key
    assert state_codec.decode_bundle(_stored(port)[b"b"]) == (6, {})
    fresh = LearnerState(port, {})
    assert (fresh.watermark("ada"), fresh.pair("ada", "r1")) == (6, _pair(2))  # the old `w` key is shadowed


def _decisions(records, checkpoint_every: list[int]) -> tuple[list[bytes], DictPort]:
    """The worker path over one kept LearnerState, written back after the given record
    counts (cycled) and now and then replaced by a fresh one, as a revocation does."""
    courses = MemoryStore()
    state = LearnerState(DictPort(), courses.courses)
    path, rng, lines = WorkerPath(state, courses, Rules(), keeps_state=True), random.Random(7), []
    since, every = 0, itertools.cycle(checkpoint_every)
    due = next(every)
    for record in records:
        lines.extend(path.lines([record]))
        since += 1
        if since >= due:
            state.write_back()
            if rng.random() < 0.2:  # revoked and assigned again: read afresh from the store
                state = path.store = LearnerState(state.port, courses.courses)
            since, due = 0, next(every)
    state.write_back()
    return lines, state.port


@pytest.mark.parametrize("every, limits", [([1], None), ([7], None), ([3, 50, 200], None), ([100_000], None),
                                           ([1], (100, 300)), ([5], (200, 600))])
def test_decisions_do_not_depend_on_when_checkpoints_fall_or_what_is_bundled(every, limits, monkeypatch):
    if limits:  # pairs leave their bundle often
        monkeypatch.setattr(learner_state, "PAIR_LIMIT", limits[0])
        monkeypatch.setattr(learner_state, "BUNDLE_LIMIT", limits[1])
    records = classroom_records(16, 5)
    simulator = MemoryStore()
    expected = list(WorkerPath(simulator, simulator, Rules()).lines(records))
    assert sum(bool(orjson.loads(line)["outputs"]) for line in expected) > 10  # there is something to decide
    lines, port = _decisions(records, every)
    assert lines == expected
    own = sum(key.startswith(b"p:") for key in _stored(port))
    assert own >= 10 if limits else own == 0  # (12 of the classroom's pairs pass the small limits)


@pytest.mark.parametrize("make", [lambda: LearnerState(DictPort(), {}), MemoryStore], ids=["LearnerState", "MemoryStore"])
def test_a_learners_time_spent_read_and_written_together_is_its_values_one_at_a_time(make):
    """`time_spent(user)` reads the watermark as `watermark` does and the pairs as `pair`
    does (a default where there is none); `set_time_spent` writes as `set_pair` and
    `set_watermark` do, the watermark only when given, on both stores; other learners'
    values are untouched."""
    store = make()
    one, two = PairState(entry(1, 1000, b"\x01" * 16), None, ()), PairState(entry(2, 2000, b"\x02" * 16), None, ())
    store.set_pair("ada", "r1", one)
    store.set_pair("bob", "r1", two)
    store.set_watermark("ada", 5)
    if isinstance(store, LearnerState):
        store.keep()
    watermark, pairs = store.time_spent("ada")
    assert watermark == 5 and pairs.get("r1", EMPTY_PAIR) == one and pairs.get("r2", EMPTY_PAIR) is EMPTY_PAIR
    store.set_pair("bob", "r2", one)  # the current record's write, not yet kept
    assert store.time_spent("bob")[1].get("r2", EMPTY_PAIR) == one and store.time_spent("bob")[0] is None
    assert store.time_spent("cyd")[1].get("r1", EMPTY_PAIR) is EMPTY_PAIR
    store.set_time_spent("ada", None, {"r1": two, "r2": one})
    store.set_time_spent("cyd", 9, {"r3": one})
    store.set_time_spent("dan", 3, {})
    assert [store.pair("ada", r) for r in ("r1", "r2")] == [two, one]
    assert (store.pair("bob", "r1"), store.pair("cyd", "r3"), store.pair("cyd", "r1")) == (two, one, None)
    assert [store.watermark(user) for user in ("ada", "bob", "cyd", "dan")] == [5, None, 9, 3]
