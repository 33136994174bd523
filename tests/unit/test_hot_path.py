"""The hot path (processing/hot_path.py) decides as the layers do: on generated
classrooms applied as a worker applies them, every record gives the same outputs,
counts, routed learners and state with it as without it; it takes the common records,
and every other record it leaves to the layers without writing anything. (Damaged and
odd Caliper records: tests/unit/test_heartbeats.py compares them with the models alone.)"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings

from tests.budget import examples
from tests.builders import at, course, eid, envelope, heartbeat, line, mastery, resource, time_spent_event, to_bytes
from tests.generated_classrooms import classrooms
from xpbank.cli.records import read_lines
from xpbank.contract.records import InputRecord
from xpbank.contract.times import format_time, parse_time
from xpbank.contract.topics import CURRICULUM, INPUT_KINDS
from xpbank.core.banking import EMPTY_PAIR
from xpbank.core.rules import Rules
from xpbank.processing import handlers
from xpbank.processing.handlers import handle_record
from xpbank.processing.hot_path import owner_heartbeats
from xpbank.processing.state import MemoryStore

RULES = Rules()


def records(lines: list[dict]) -> list[InputRecord]:
    """As a worker reads them: partition 0, offsets in order."""
    return [record._replace(partition=0, offset=offset) for offset, record in enumerate(read_lines(to_bytes(lines)))]


def as_worker(lines: list[dict], hot: Callable) -> tuple[list, dict, int]:
    """Every record applied with its key as owner (a course without one), and a routed
    copy for each other learner it names, as the worker sends them; with `hot` standing
    in for the hot path. Returns what each record gave, the state, and how many records
    `hot` took."""
    store, results, taken = MemoryStore(), [], 0
    real = handlers.owner_heartbeats

    def counted(*args):
        nonlocal taken
        accepted = hot(*args)
        taken += accepted is not None
        return accepted

    handlers.owner_heartbeats = counted
    try:
        for record in records(lines):
            owner = None if record.topic == CURRICULUM else (record.key or b"").decode()
            handled = handle_record(store, record, RULES, owner=owner)
            results.append(given_by(handled))
            for user in sorted(handled.foreign_users):
                results.append(given_by(handle_record(store, record, RULES, owner=user, rekeyed=True)))
    finally:
        handlers.owner_heartbeats = real
    return results, vars(store), taken


def given_by(handled) -> tuple:
    return ([(o.topic, o.key, o.value.model_dump(mode="json")) for o in handled.outputs], handled.counted,
            set(handled.foreign_users))


def layers_only(*args) -> None:
    return None


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(classrooms())
def test_a_classroom_gives_the_same_outputs_counts_and_state_with_or_without_the_hot_path(lines):
    hot_results, hot_state, taken = as_worker(lines, owner_heartbeats)
    layered_results, layered_state, none = as_worker(lines, layers_only)
    event(f"hot path took {'no' if not taken else 'some'} records")
    assert none == 0
    assert hot_results == layered_results
    assert hot_state == layered_state


def test_generated_classrooms_reach_the_hot_path_and_leave_it():
    """The property above compares something: over its first examples the hot path takes
    records and declines others (the classrooms have late, duplicate, clamped and
    routed heartbeats, and masteries)."""
    taken = declined = 0

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(classrooms())
    def run(lines):
        nonlocal taken, declined
        caliper = sum(1 for doc in lines if doc["topic"] == "learning.caliper.v1")
        took = as_worker(lines, owner_heartbeats)[2]
        taken += took
        declined += caliper - took

    run()
    assert taken > 50 and declined > 20, (taken, declined)


# ---- hand-picked records -------------------------------------------------------------

COURSE = course("c1", [[resource("v1", 1, "Video", xp=5), resource("a1", 2, "Article", xp=5), resource("x1", 3, "Exercise", xp=2)]])


def prepared(lines: list[dict]) -> MemoryStore:
    """A learner's state after `lines` (and the course), applied through the layers."""
    store = MemoryStore()
    for record in records([COURSE, *lines]):
        owner = None if record.topic == CURRICULUM else "u1"
        handled = handlers.layered(store, record, RULES, owner, False, INPUT_KINDS[record.topic])
        assert not handled.foreign_users
    return store


def one(doc: dict) -> InputRecord:
    return records([doc])[0]


def test_a_learners_single_heartbeats_and_envelopes_are_taken_and_applied_as_the_layers_apply_them():
    for doc, count in ((heartbeat("u1", "v1", 30, 100), 1),
                       (envelope("u1", [time_spent_event("u1", r, 30, 100 + i) for i, r in enumerate("v1 a1 v1".split())], 110), 3)):
        hot, layered = prepared([heartbeat("u1", "a1", 20, 50)]), prepared([heartbeat("u1", "a1", 20, 50)])
        assert owner_heartbeats(hot, one(doc), RULES, "u1") == count
        expected = handlers.layered(layered, one(doc), RULES, "u1", False, "caliper")
        assert expected.counted == (("time_spent_accepted", count),) and not expected.outputs
        assert vars(hot) == vars(layered) and hot.pair("u1", "v1").entries


def mastered() -> list[dict]:
    """v1 and a1 read, then x1 mastered at 300: v1's pair has a decision and explains x1."""
    return [heartbeat("u1", "v1", 60, 100), heartbeat("u1", "a1", 60, 200), mastery("u1", "x1", 300)]


DECLINED = {
    "another learner's event": ([], envelope("u1", [time_spent_event("u1", "v1", 30, 100), time_spent_event("u2", "v1", 30, 101)], 110)),
    "a duplicate": ([heartbeat("u1", "v1", 30, 100)], heartbeat("u1", "v1", 30, 100)),
    "a duplicate in the record": ([], envelope("u1", [time_spent_event("u1", "v1", 30, 100)] * 2, 110)),
    "too late": ([heartbeat("u1", "v1", 30, 9000)], heartbeat("u1", "a1", 30, 100)),
    "clamped": ([], line("learning.caliper.v1", "u1", time_spent_event("u1", "v1", 30, 100) | {"generated": {"items": [
        {"type": "active", "value": 90, "startDate": "2026-01-01T00:00:00Z", "endDate": "2026-01-01T00:00:30Z"}]}})),
    "unanchored": ([], heartbeat("u1", "v1", 30, 100, anchored=False)),
    "two items": ([], line("learning.caliper.v1", "u1", time_spent_event("u1", "v1", 30, 100) | {"generated": {"items": [
        {"type": "active", "value": 5}, {"type": "inactive", "value": 5}]}})),
    "a decision to revisit": (mastered(), heartbeat("u1", "v1", 30, 250)),
    "evidence to publish": (mastered(), heartbeat("u1", "v1", 30, 400)),
    "an empty envelope": ([], envelope("u1", [], 110)),
    "an id the models refuse": ([], heartbeat("u1", "v1", 30, 100, event_id="urn:uuid:not-a-uuid")),
    "a course event": ([], COURSE),
}


@pytest.mark.parametrize("name", DECLINED)
def test_every_other_record_is_left_to_the_layers_with_nothing_written(name):
    before, doc = DECLINED[name]
    store = prepared(before)
    if name in ("a decision to revisit", "evidence to publish"):
        pair = store.pair("u1", "v1") or EMPTY_PAIR
        assert pair.decision is not None and pair.explains == ("x1",), pair  # the state the case is about
        if name == "a decision to revisit":  # and nothing else: a heartbeat before the decision's T
            store.set_pair("u1", "v1", pair._replace(explains=()))
    state = copy.deepcopy(vars(store))
    record = one(doc)._replace(topic="learning.caliper.v1", topic_full_name="learning.caliper.v1")
    assert owner_heartbeats(store, record, RULES, "u1") is None
    assert vars(store) == state


def test_a_heartbeat_after_a_decision_keeps_it():
    """A pair decided before (with no evidence to publish) takes heartbeats after the
    decision's T on the hot path, the decision kept as the layers keep it."""
    hot, layered = prepared(mastered()), prepared(mastered())
    for store in (hot, layered):
        store.set_pair("u1", "v1", store.pair("u1", "v1")._replace(explains=()))
    doc = heartbeat("u1", "v1", 30, 400)
    assert owner_heartbeats(hot, one(doc), RULES, "u1") == 1
    handlers.layered(layered, one(doc), RULES, "u1", False, "caliper")
    assert vars(hot) == vars(layered) and hot.pair("u1", "v1").decision is not None


# ---- the edges of each check, a microsecond or a millisecond apart -----------------------

US = timedelta(microseconds=1)


def beat_at(end: datetime, *, start: datetime | None = None, value: float = 30, timestamp: datetime | None = None,
            **event) -> dict:
    """u1's heartbeat on v1 ending at `end` (to the µs), with its window and record timestamp."""
    doc = time_spent_event("u1", "v1", 30, 0, event_id=eid("edge", end, start, value, timestamp, sorted(event)))
    item = doc["generated"]["items"][0]
    doc["eventTime"] = item["endDate"] = format_time(end)
    item["startDate"], item["value"] = format_time(start or end - timedelta(seconds=30)), value
    return line("learning.caliper.v1", "u1", doc | event, format_time(timestamp or end))


def chained(value: float) -> dict:
    """An envelope of two heartbeats on v1, the second's window starting where the
    first's ended (at 990 s), 10 s after the first's eventTime: the second's window is
    10 s (its cap 11 s), not 20."""
    first = time_spent_event("u1", "v1", 30, 990, event_id=eid("chained", 1, value)) | {"eventTime": at(980)}
    second = time_spent_event("u1", "v1", value, 1000, event_id=eid("chained", 2, value))
    second["generated"]["items"][0]["startDate"] = at(990)
    return envelope("u1", [first, second], 1000)


T = parse_time(at(1000))
LATE, SKEW = timedelta(seconds=RULES.lateness_seconds), timedelta(seconds=RULES.max_clock_skew_seconds)
WATERMARK = [heartbeat("u1", "a1", 30, 1000)]  # u1's watermark: T
EDGES = {  # name: (records before, the record, taken by the hot path)
    "at the lateness horizon": (WATERMARK, beat_at(T - LATE), True),
    "a microsecond before it": (WATERMARK, beat_at(T - LATE - US), False),
    "at the clock skew limit": ([], beat_at(T + SKEW, timestamp=T), True),
    "a microsecond past it": ([], beat_at(T + SKEW + US, timestamp=T), False),
    "a credit at its window's cap": ([], beat_at(T, value=31), True),
    "a millisecond over it": ([], beat_at(T, value=31.001), False),
    "a window ending a microsecond before it starts": ([], beat_at(T, start=T + US, value=0.5), False),
    "an empty window": ([], beat_at(T, start=T, value=0.5), True),
    "a heartbeat at the decision's T": (mastered(), beat_at(parse_time(at(300))), False),
    "a microsecond after it": (mastered(), beat_at(parse_time(at(300)) + US), True),
    "an inactive item alone": ([], line("learning.caliper.v1", "u1", time_spent_event("u1", "v1", 30, 1000) | {"generated": {
        "items": [{"type": "inactive", "value": 30, "startDate": at(970), "endDate": at(1000)}]}}, at(1000)), False),
    "a course id the models refuse": ([], beat_at(T, object={"activity": {"id": "v1"}, "course": {"id": ""}}), False),
    "an id with a dash out of place": ([], beat_at(T, id="urn:uuid:3f1c2a4-00000-4000-8000-000000000001"), False),
    "an id with spaces for two digits": ([], beat_at(T, id="urn:uuid:3f1c2a  -0000-4000-8000-000000000001"), False),
    "a record without a timestamp": ([], beat_at(T), True),  # (the timestamp is taken away below)
    "a window from the previous one's end, at its cap": ([], chained(11), True),
    "a millisecond over it, from there": ([], chained(11.001), False),
}


@pytest.mark.parametrize("name", EDGES)
def test_each_check_has_the_layers_edge(name):
    before, doc, taken = EDGES[name]
    hot, layered = prepared(before), prepared(before)
    if before is not WATERMARK and before:  # the decision alone, as in "a decision to revisit"
        for store in (hot, layered):
            store.set_pair("u1", "v1", store.pair("u1", "v1")._replace(explains=()))
    state = copy.deepcopy(vars(hot))
    record = one(doc)
    if name == "a record without a timestamp":
        record = record._replace(timestamp=None)
    if taken:
        count = len(doc["value"].get("data", [doc]))
        assert owner_heartbeats(hot, record, RULES, "u1") == count
        assert handlers.layered(layered, record, RULES, "u1", False, "caliper").counted == (("time_spent_accepted", count),)
        assert vars(hot) == vars(layered)
    else:
        assert owner_heartbeats(hot, record, RULES, "u1") is None and vars(hot) == state
