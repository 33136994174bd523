"""A partition's LearnerState keeps its values decoded between checkpoints: each is read
from the port once and written to it once per checkpoint, positions last, and the
decisions do not depend on when the checkpoints fall."""

from __future__ import annotations

import itertools
import random

import orjson
import pytest

from tests.golden.corpus import WorkerPath, classroom_records
from xpbank.core.banking import EMPTY_PAIR
from xpbank.core.rules import Rules
from xpbank.processing import learner_state
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
    assert len(port.reads) == 2  # the watermark and the position: the pair was set before any read
    assert port.writes == []  # nothing before the checkpoint
    assert state.write_back() == 3
    prefix = learner_prefix("ada")
    assert port.writes[-1] == full_key(prefix, b"o:src:0")  # the position last
    assert sorted(port.writes) == sorted(full_key(prefix, k) for k in (b"w", b"p:r1", b"o:src:0"))
    assert state.write_back() == 0  # nothing changed since
    again = LearnerState(port, {})  # a worker that reads the partition afresh
    assert (again.watermark("ada"), again.pair("ada", "r1"), again.position("ada", "src:0")) == (99, EMPTY_PAIR, 99)


def test_a_missing_value_is_looked_up_once():
    port = CountingPort()
    state = LearnerState(port, {})
    assert [state.pair("ada", "r1") for _ in range(3)] == [None] * 3
    assert len(port.reads) == 1


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
    assert port.reads[-1] == full_key(learner_prefix("u0"), b"w")


def _decisions(records, checkpoint_every: list[int]) -> list[bytes]:
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
    return lines


@pytest.mark.parametrize("every", [[1], [7], [3, 50, 200], [100_000]])
def test_decisions_do_not_depend_on_when_checkpoints_fall(every):
    records = classroom_records(16, 5)
    simulator = MemoryStore()
    expected = list(WorkerPath(simulator, simulator, Rules()).lines(records))
    assert sum(bool(orjson.loads(line)["outputs"]) for line in expected) > 10  # there is something to decide
    assert _decisions(records, every) == expected
