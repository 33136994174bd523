"""The handler layer the worker uses: routing by learner, a record's writes kept once its sends are done."""

from __future__ import annotations

import orjson

from tests.builders import envelope, time_spent_event
from tests.unit.test_learner_state import CountingPort
from xpbank.core.rules import Rules
from xpbank.processing.handlers import InputRecord, handle_record
from xpbank.processing.learner_state import LearnerState
from xpbank.processing.state import MemoryStore


def record(doc: dict, key: str | None, offset: int = 1) -> InputRecord:
    return InputRecord(topic=doc["topic"], key=key.encode() if key else None, value=orjson.dumps(doc["value"]),
                       timestamp=None, partition=0, offset=offset, topic_full_name=doc["topic"])


def test_owner_applies_its_events_and_lists_other_learners_for_routing():
    store = MemoryStore()
    mixed = envelope("u1", [time_spent_event("u1", "v1", 30, 10), time_spent_event("u2", "v1", 30, 11),
                            time_spent_event("u3", "v1", 30, 12)], 20)
    handled = handle_record(store, record(mixed, "u1"), Rules(), owner="u1")
    assert handled.foreign_users == {"u2", "u3"}
    assert store.pair("u1", "v1") is not None and store.pair("u2", "v1") is None
    copy = handle_record(store, record(mixed, "u2"), Rules(), owner="u2", rekeyed=True)
    assert copy.foreign_users == set() and store.pair("u2", "v1") is not None and store.pair("u3", "v1") is None


def test_a_record_keyed_by_something_else_is_routed_whole():
    handled = handle_record(MemoryStore(), record(envelope("u1", [time_spent_event("u1", "v1", 30, 10)], 20), "device-7"),
                            Rules(), owner="device-7")
    assert handled.foreign_users == {"u1"}


def test_a_records_writes_wait_for_keep_and_the_position_is_written_last():
    port = CountingPort()
    state = LearnerState(port, MemoryStore().courses)
    handle_record(state, record(envelope("u1", [time_spent_event("u1", "v1", 30, 10)], 20), "u1"), Rules(),
                  owner="u1", rekeyed=True)
    assert state.write_back() == 0  # nothing kept before `keep`
    state.keep()
    assert state.write_back() == 2 and port.writes[-1].endswith(b"|o:learning.caliper.v1:0")  # bundle, position
    handle_record(state, record(envelope("u1", [time_spent_event("u1", "v2", 30, 11)], 20), "u1"), Rules(), owner="u1")
    state.discard()  # its sends failed: applied again later
    assert state.pair("u1", "v2") is None and state.write_back() == 0


def test_a_routed_copy_sent_twice_counts_once_and_records_in_place_store_no_origin():
    store = MemoryStore()
    store.set_course("c1", None)
    doc = envelope("u2", [time_spent_event("u2", "v1", 30, 10)], 20)
    first = handle_record(store, record(doc, "u2", offset=7), Rules(), owner="u2", rekeyed=True)
    again = handle_record(store, record(doc, "u2", offset=7), Rules(), owner="u2", rekeyed=True)
    assert again.counts["redelivered"] == 1 and not again.outputs and "redelivered" not in first.counts
    assert store.position("u2", "learning.caliper.v1:0") == 7
    in_place = MemoryStore()
    handle_record(in_place, record(doc, "u2", offset=7), Rules(), owner="u2")
    assert in_place.positions == {}  # the worker's ledger covers records read in place


def test_a_records_counts_sum_what_the_core_counted_under_one_name():
    from xpbank.processing.handlers import Handled

    handled = Handled((), (("duplicates", 1), ("clamped_ms", 5), ("duplicates", 2)), frozenset())
    assert handled.counts == {"duplicates": 3, "clamped_ms": 5}
    store = MemoryStore()
    beats = [time_spent_event("u1", "v1", 30, 10), time_spent_event("u1", "v2", 30, 11)]
    once = handle_record(store, record(envelope("u1", beats, 20), "u1"), Rules(), owner="u1")
    again = handle_record(store, record(envelope("u1", beats, 20), "u1", offset=2), Rules(), owner="u1")
    assert once.counted == (("time_spent_accepted", 2),) and again.counts == {"duplicates": 2}
