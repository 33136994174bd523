"""The handler layer the worker uses: routing by learner, buffered writes."""

from __future__ import annotations

import orjson

from tests.builders import course, envelope, resource, time_spent_event
from xpbank.core.rules import Rules
from xpbank.processing.handlers import InputRecord, handle_record
from xpbank.processing.state import BufferedStore, MemoryStore


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


def test_buffered_store_holds_writes_until_flush_and_writes_the_position_last():
    inner = MemoryStore()
    order: list[str] = []
    for name in ("set_pair", "set_position", "set_watermark"):
        original = getattr(inner, name)
        setattr(inner, name, lambda *a, _o=original, _n=name: (order.append(_n), _o(*a)))
    buffered = BufferedStore(inner)
    handle_record(buffered, record(course("c1", [[resource("v1", 1, "Video", 5)]]), "c1"), Rules())
    handle_record(buffered, record(envelope("u1", [time_spent_event("u1", "v1", 30, 10)], 20), "u1"), Rules(), owner="u1",
                  rekeyed=True)
    assert inner.pair("u1", "v1") is None  # nothing written before flush
    buffered.flush()
    assert inner.pair("u1", "v1") is not None and order[-1] == "set_position"



def test_a_routed_copy_sent_twice_counts_once_and_records_in_place_store_no_origin():
    store = MemoryStore()
    store.set_course("c1", None)
    doc = envelope("u2", [time_spent_event("u2", "v1", 30, 10)], 20)
    first = handle_record(store, record(doc, "u2", offset=7), Rules(), owner="u2", rekeyed=True)
    again = handle_record(store, record(doc, "u2", offset=7), Rules(), owner="u2", rekeyed=True)
    assert again.counts["redelivered"] == 1 and not again.outputs and not first.counts["redelivered"]
    assert store.position("u2", "learning.caliper.v1:0") == 7
    in_place = MemoryStore()
    handle_record(in_place, record(doc, "u2", offset=7), Rules(), owner="u2")
    assert in_place.positions == {}  # the worker's ledger covers records read in place
