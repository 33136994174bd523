"""State written before the one key layout is still read after it (processing/upcast.py),
so an upgrade needs no replay.

The faust-v1 fixture is the Faust engine's five tables after the first half of a
classroom, as the previous code wrote them (tests/golden/generate_faust_v1.py). The
second half, processed over that state through the Faust checkpoint's port, must give
exactly what the whole classroom gives processed from scratch today."""

from __future__ import annotations

import gzip
from types import SimpleNamespace

import orjson
import pytest

from tests.golden.corpus import GOLDEN, WorkerPath, classroom_records, table_store
from xpbank.contract.topics import CURRICULUM
from xpbank.core.rules import Rules
from xpbank.processing.learner_state import OUTBOX_PREFIX, DictPort, LearnerState, count_kinds, full_key, outbox_key
from xpbank.processing.state import MemoryStore
from xpbank.processing.upcast import FAUST_V1_TABLES, QUIX_V1_OUTBOX_KEY, ReadThrough, quix_v1
from xpbank.runtime import outbox
from xpbank.runtime.engines import FAUST_TABLE
from xpbank.runtime.faust.checkpoint import Checkpoint
from xpbank.runtime.outbox import Outbox

FIXTURE = orjson.loads(gzip.decompress((GOLDEN / "corpora" / "faust-v1-state.json.gz").read_bytes()))


def _table(data: dict[bytes, bytes]) -> SimpleNamespace:
    """A Faust table on the memory store, as the checkpoint reads it."""
    return SimpleNamespace(data=SimpleNamespace(data=data))


def _checkpoint(with_v1: bool) -> Checkpoint:
    tables = {FAUST_TABLE: _table({})}
    if with_v1:
        tables |= {name: _table({bytes.fromhex(k): bytes.fromhex(v) for k, v in FIXTURE["tables"].get(name, [])})
                   for name in FAUST_V1_TABLES}
    return Checkpoint(None, tables, Outbox(), states=None)  # (never flushed here)


def _second_half(with_v1: bool) -> list[bytes]:
    records = classroom_records(*FIXTURE["classroom"])
    done, courses = FIXTURE["records_done"], MemoryStore()
    for record in records[:done]:  # every worker's curriculum view follows the topic from its start
        if record.topic == CURRICULUM:
            list(WorkerPath(None, courses, Rules()).lines([record]))
    path = WorkerPath(LearnerState(_checkpoint(with_v1).port(0), courses.courses), courses, Rules())
    path.mastery_offset = FIXTURE["mastery_offset"]
    return list(path.lines(records[done:]))


def _from_scratch() -> list[bytes]:
    records = classroom_records(*FIXTURE["classroom"])
    store, courses = table_store()
    path = WorkerPath(store, courses, Rules())
    list(path.lines(records[:FIXTURE["records_done"]]))
    return list(path.lines(records[FIXTURE["records_done"]:]))


def test_the_fixture_holds_every_table_of_the_old_layout():
    assert set(FIXTURE["tables"]) == set(FAUST_V1_TABLES)
    assert all(FIXTURE["tables"][name] for name in FAUST_V1_TABLES)


def test_state_in_the_faust_v1_tables_decides_the_rest_of_the_classroom_as_before():
    expected = _from_scratch()
    assert any(orjson.loads(line)["outputs"] for line in expected)  # there is something to decide
    assert _second_half(with_v1=True) == expected


def test_without_the_old_tables_the_rest_of_the_classroom_is_decided_otherwise():
    """The fixture matters: without it, the second half meets empty state."""
    assert _second_half(with_v1=False) != _from_scratch()


def test_a_write_in_todays_layout_shadows_the_old_one():
    checkpoint = _checkpoint(with_v1=True)
    state = LearnerState(checkpoint.port(0), {})
    user = bytes.fromhex(FIXTURE["tables"]["watermarks"][0][0]).decode()
    old = state.watermark(user)
    assert old is not None
    state.set_watermark(user, old + 1)
    assert state.watermark(user) == old + 1


@pytest.mark.parametrize("left", [[("xp.facts.v1", b"k", b"{}", 1_700_000_000_000)], []])
def test_an_outbox_a_quix_v1_stop_left_is_published_once(left):
    port = DictPort()
    if left:
        port.set_bytes(QUIX_V1_OUTBOX_KEY, outbox.encode(left), prefix=OUTBOX_PREFIX)
    assert outbox.read(ReadThrough(port, quix_v1(port)), 3) == left
    outbox.write(port, 3, b"")  # published: emptied in today's layout
    assert outbox.read(ReadThrough(port, quix_v1(port)), 3) == []


def test_stored_keys_are_counted_as_the_kinds_the_simulator_holds():
    """`xpbank_table_keys{table=...}` counts the one table's keys per kind: as many as
    the simulator's dicts of that kind hold after the same classroom."""
    records = classroom_records(*FIXTURE["classroom"])
    stored, courses = table_store()
    list(WorkerPath(stored, courses, Rules()).lines(records))
    simulator = MemoryStore()
    list(WorkerPath(simulator, simulator, Rules()).lines(records))
    stored.port.data[full_key(OUTBOX_PREFIX, outbox_key(0))] = b"\x01"
    assert count_kinds(stored.port.data) == {  # every learner's watermark and (small) pairs in one bundle
        "bundles": len(set(simulator.watermarks) | set(simulator.learner_pairs)),
        "attempts": len(simulator.attempt_states), "masteries": len(simulator.masteries),
        "positions": len(simulator.positions), "outbox": 1}
    assert all(len(simulator.__dict__[name]) for name in ("watermarks", "learner_pairs", "attempt_states", "masteries"))
