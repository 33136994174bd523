"""Tests that kill the mutants `make mutate` found surviving (docs/mutation.md): each
pins a decision of core/ or processing/, or the state it is kept in, that no other test
in mutmut's selection pinned. The mutants each test kills are named in its docstring."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from tests.builders import attempt, course, envelope, heartbeat, of_type, resource, simulate, time_spent_event
from xpbank.contract.events import CourseDeleted
from xpbank.contract.outputs import XpFact
from xpbank.contract.times import to_micros
from xpbank.core.attempts import AttemptState, CompletedAttempt, OpenAttempt
from xpbank.core.banking import BankDecision, MasteryRef, PairState
from xpbank.core.evidence import changes_evidence
from xpbank.core.read_time import TimeEntry, credit, pack, seconds_up_to
from xpbank.core.rules import Rules
from xpbank.processing.handlers import InputRecord, OutputRecord, handle_record, learner_of
from xpbank.processing.simulate import current_facts
from xpbank.processing.learner_state import DictPort, LearnerState
from xpbank.processing.state import MemoryStore
from xpbank.processing.state_codec import (
    decode_attempts, decode_int, decode_mastery_ref, decode_pair, encode_attempts, encode_pair,
)

T = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)  # a value in a codec, never compared with now
DECISION = BankDecision(T, "m1", "ex1", 1, "c1", "Math", None, "Video", 5, xp=3, revision=2)
ENTRIES = pack([TimeEntry(1_000, 60_000, f"urn:uuid:{uuid.UUID(int=7)}")])


@pytest.mark.parametrize("explains", [(), ("ex1", "ex2")])
def test_a_pair_keeps_its_decision_in_the_table_with_or_without_explanations(explains):
    """encode_pair 12, 17-20: a decided pair written without explanations (state from
    before version 2, written again) lost its decision, or was marked version 2."""
    pair = PairState(ENTRIES, DECISION, explains)
    raw = encode_pair(pair)
    assert decode_pair(raw) == pair
    assert raw[0] == (2 if explains else 1)  # a version-1 reader (a rolling upgrade) still reads it


def test_an_attempt_state_keeps_its_last_completed_attempt():
    """encode_attempts 6, decode_attempts 17 and 22: the attempt view and the no-farming
    rule read `last_completed` after a restart."""
    state = AttemptState(completed=1, mastered_before=True, open=OpenAttempt(2, 3, (("q1", True),), ("q2",)),
                         last_completed=CompletedAttempt(1, 4, 5, 80.0, 2, True, "s1"), seen=frozenset({"s1"}))
    assert decode_attempts(encode_attempts(state)) == state


def test_state_written_before_version_bytes_is_still_read():
    """_json_of 4-6, decode_int 2-3: attempts and mastery refs stored as a bare JSON
    object, watermarks and positions as a bare int64, before version 1."""
    assert decode_attempts(b'{"completed": 2, "mastered_before": false, "open": null, "last_completed": null, '
                           b'"seen": ["a"]}') == AttemptState(completed=2, seen=frozenset({"a"}))
    ref = MasteryRef(id="m1", eventTime=T, attempt=1, courseSourcedId="c1")
    assert decode_mastery_ref(ref.model_dump_json().encode()) == ref
    assert decode_int((-5).to_bytes(8, "big", signed=True)) == -5
    assert decode_int(b"\x01" + (7).to_bytes(8, "big", signed=True)) == 7


@pytest.mark.parametrize(("decode", "raw", "message"), [
    (decode_attempts, b"\x09{}", "attempt state version 9 is not supported"),
    (decode_mastery_ref, b"\x09{}", "mastery ref version 9 is not supported"),
    (decode_int, b"\x09" + bytes(8), "integer value version 9 is not supported"),
    (decode_pair, b"\x09" + bytes(4), "pair state version 9 is not supported"),
])
def test_a_state_version_this_code_does_not_know_is_refused_by_name(decode, raw, message):
    """_json_of 7-8, decode_* message mutants: a worker rolled back over newer state says
    which value it cannot read, instead of deciding on a misread one."""
    with pytest.raises(ValueError, match=f"^{message}$"):
        decode(raw)


def test_a_learner_state_reads_its_records_own_writes_and_writes_the_position_last():
    """LearnerState _get/_set/keep/write_back mutants: within a record, a second event must
    see the first one's state, nothing is kept before `keep`, and once the position is
    stored so is everything else."""
    port = DictPort()
    seeded = LearnerState(port, {})
    seeded.set_position("u1", "src:0", 4)
    seeded.set_watermark("u2", 9)
    seeded.keep()
    seeded.write_back()
    store = LearnerState(port, {})
    assert store.position("u1", "src:0") == 4 and store.watermark("u2") == 9  # read through
    ref = MasteryRef(id="m1", eventTime=T, attempt=1, courseSourcedId="c1")
    store.set_position("u1", "src:0", 5)
    store.set_watermark("u1", 10)
    store.set_attempts("u1", "ex1", AttemptState(completed=1))
    store.set_mastery("u1", "ex1", ref)
    assert (store.position("u1", "src:0"), store.watermark("u1"), store.attempts("u1", "ex1"),
            store.mastery("u1", "ex1")) == (5, 10, AttemptState(completed=1), ref)
    fresh = LearnerState(port, {})
    assert (fresh.position("u1", "src:0"), fresh.watermark("u1"), fresh.attempts("u1", "ex1")) == (4, None, None)
    assert store.attempts("u2", "ex1") is None and store.mastery("u1", "ex2") is None
    assert store.write_back() == 0  # not kept yet

    calls = []
    recording = type("Recording", (), {"set_bytes": lambda self, key, value, prefix: calls.append(key)})
    assert store.keep() == 4
    assert store.write_back(recording()) == 4
    assert calls[-1] == b"o:src:0" and sorted(calls[:-1]) == [b"a:ex1", b"b", b"m:ex1"]  # the watermark in the bundle


def test_a_consumer_keeps_the_greatest_revision_of_a_fact_whatever_the_order():
    """simulate.current_facts 3-4: a revision 1 read after revision 2 must not replace it."""
    fact = lambda revision, xp: OutputRecord("xp.facts.v1", "u1", XpFact(  # noqa: E731
        factId="bank:u1:v1", kind="banked", generation=1, revision=revision, userSourcedId="u1", date=T.date(),
        email=None, courseSourcedId="c1", subject=None, resourceSourcedId="v1", exerciseSourcedId="ex1", attempt=1,
        xp=xp, eventTime=T, sources=("m1",)), T)
    assert current_facts([fact(2, 4), fact(1, 2)])["bank:u1:v1"].xp == 4


def test_a_record_whose_key_is_not_utf8_is_dead_lettered_under_its_full_topic_name():
    """_dead_letter 7, 10, 11 and 34: bad input never crashes the worker, and the letter
    names the topic as it is on the broker (a prefixed deployment)."""
    record = InputRecord("learning.submissions.v1", b"u\xff1", b"{not json", T, partition=3, offset=11,
                         topic_full_name="blue.learning.submissions.v1")
    handled = handle_record(MemoryStore(), record, Rules())
    [letter] = [out.value for out in handled.outputs]
    assert (letter.reason, letter.key, letter.topic, letter.partition, letter.offset) == (
        "malformed_json", "u\ufffd1", "blue.learning.submissions.v1", 3, 11)


def test_a_late_event_first_in_an_envelope_republishes_the_evidence_even_if_a_later_one_follows():
    """handlers._evidence 3: the evidence is published again when any event of the record
    counts up to the mastery's T, not only the record's last event."""
    lines = [course("c1", [[resource("v1", 1, "Video", 5), resource("ex1", 2, "Exercise", 2)]]),
             heartbeat("u1", "v1", 60, 100), *attempt("u1", "ex1", 200, [True]),
             envelope("u1", [time_spent_event("u1", "v1", 60, 150), time_spent_event("u1", "v1", 30, 400)], 401)]
    outputs, _ = simulate(lines)
    decided = of_type(outputs, "BankingDecided")
    assert len(decided) == 2 and decided[-1].total == 2  # at the mastery, then again: 2 minutes up to T


def test_a_course_has_no_learner():
    """learner_of 5: a course (or its tombstone) is not routed to a learner's partition."""
    assert learner_of(CourseDeleted(courseSourcedId="c1")) is None


# ---- core/ (time accounting and banking) ----------------------------------------------


def test_time_at_exactly_t_counts_for_the_mastery_and_its_evidence():
    """read_time.seconds_up_to 3, evidence.changes_evidence 4: §3.4 counts event times up
    to and including T."""
    t_us = to_micros(T)
    assert seconds_up_to(pack([TimeEntry(t_us, 60_000, f"urn:uuid:{uuid.UUID(int=1)}")]), t_us) == 60_000
    assert changes_evidence(MasteryRef(id="m1", eventTime=T, attempt=1, courseSourcedId="c1"), [t_us])


def test_every_item_over_its_cap_is_counted_as_clamped():
    """read_time.credit 20: two unanchored items of 100 s under a 60 s cap."""
    assert credit(((100.0, None), (100.0, None)), 60_000) == (120_000, 80_000)


def test_every_event_too_late_in_an_envelope_is_dead_lettered():
    """time_spent.record_time_spent 20: a second late event must not replace the first's
    dead letter (bad input is never dropped silently)."""
    late = [time_spent_event("u1", "v1", 30, -8000), time_spent_event("u1", "v1", 30, -7900)]
    outputs, _ = simulate([heartbeat("u1", "v1", 30, -100), envelope("u1", late, -50)])
    assert sorted(d.reason for d in of_type(outputs, "DeadLetter")) == ["too_late", "too_late"]


def test_a_redelivered_event_first_in_an_envelope_does_not_hide_the_events_after_it():
    """time_spent.record_time_spent 57 (`continue` -> `break`): the envelope's new event
    still counts, so the video banks 2 minutes, not 1."""
    lines = [course("c1", [[resource("v1", 1, "Video", 5), resource("ex1", 2, "Exercise", 2)]]),
             heartbeat("u1", "v1", 60, -600),
             envelope("u1", [time_spent_event("u1", "v1", 60, -600), time_spent_event("u1", "v1", 60, -500)], -490),
             *attempt("u1", "ex1", -300, [True])]
    outputs, _ = simulate(lines)
    assert {f.factId: f.xp for f in current_facts(outputs).values() if f.kind == "banked"} == {"bank:u1:v1": 2}
