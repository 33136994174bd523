"""The codec (SPEC §2, §3.6): bytes -> models or a reason code, in the contract's check order,
plus the table-value encodings."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xpbank.contract import codec
from xpbank.processing import state_codec
from xpbank.contract.codec import Accepted, Ignored, Invalid, decode
from xpbank.core.attempts import AttemptState, CompletedAttempt, OpenAttempt
from xpbank.contract.heartbeats import heartbeat_of
from xpbank.core.banking import BankDecision, MasteryRef, PairState
from xpbank.core.read_time import TimeEntry, credit, pack, unpack
from xpbank.core.rules import Rules
from xpbank.contract.times import EPOCH, from_micros, to_micros
from tests.budget import examples
from xpbank.contract.events import AnswerSubmitted, CourseDeleted, CourseUpserted, ExerciseMastered, TimeSpentEvent

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
SKEW = timedelta(seconds=Rules().max_clock_skew_seconds)


def uid(n: int) -> str:
    return f"urn:uuid:00000000-0000-4000-8000-{n:012d}"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def tse(n: int = 1, at: datetime = T0, **over) -> dict:
    doc = {"id": uid(n), "type": "TimeSpentEvent", "action": "SpentTime", "actor": {"id": "u1"},
           "object": {"activity": {"id": "v1"}}, "eventTime": iso(at),
           "generated": {"items": [{"type": "active", "value": 30}]}}
    return doc | over


def submission(**over) -> dict:
    return {"id": uid(9), "type": "AnswerSubmitted", "userSourcedId": "u1", "exerciseSourcedId": "ex1",
            "courseSourcedId": "c1", "questionId": "q1", "correct": True, "eventTime": iso(T0)} | over


def mastery(**over) -> dict:
    return {"id": uid(8), "type": "ExerciseMastered", "userSourcedId": "u1", "exerciseSourcedId": "ex1",
            "courseSourcedId": "c1", "attempt": 1, "accuracy": 100.0, "exerciseXp": 3, "eventTime": iso(T0)} | over


def envelope(*events, **over) -> dict:
    return {"sensor": "s", "sendTime": iso(T0), "dataVersion": "v1p2", "data": list(events)} | over


def dec(kind: str, doc, key: bytes | None = None, timestamp: datetime | None = T0, rules: Rules = Rules()):
    value = doc if isinstance(doc, bytes | None) else orjson.dumps(doc)
    return decode(kind, value, key, timestamp, rules)


def only(results) -> Accepted | Ignored | Invalid:
    assert len(results) == 1, results
    return results[0]


# ---- one test per reason code ------------------------------------------------------


@pytest.mark.parametrize(("kind", "doc", "model"), [
    ("caliper", tse(), TimeSpentEvent), ("submissions", submission(), AnswerSubmitted),
    ("mastery", mastery(), ExerciseMastered), ("curriculum", {"type": "CourseUpserted", "courseSourcedId": "c1"},
                                               CourseUpserted)])
def test_valid_records_are_accepted(kind, doc, model):
    result = only(dec(kind, doc))
    assert isinstance(result, Accepted) and type(result.event) is model


def test_payload_too_large():
    value = orjson.dumps(tse())
    assert isinstance(only(dec("caliper", value, rules=Rules(max_payload_bytes=len(value)))), Accepted)
    result = only(dec("caliper", value, rules=Rules(max_payload_bytes=len(value) - 1)))
    assert isinstance(result, Invalid) and result.reason == "payload_too_large"


@pytest.mark.parametrize("value", [b"{", b"not json", b"", b'{"value": NaN}', b"\xff\xfe{}"])
def test_malformed_json(value):
    result = only(dec("caliper", value))
    assert isinstance(result, Invalid) and result.reason == "malformed_json" and result.event_id is None


@pytest.mark.parametrize(("kind", "doc"), [
    ("caliper", tse(action="NavigatedTo")), ("caliper", tse(id="not-a-urn")), ("caliper", [tse()]),
    ("caliper", {k: v for k, v in tse().items() if k != "type"}), ("caliper", tse(type=5)),
    ("submissions", submission(type="AttemptAbandoned")), ("submissions", submission(correct=None)),
    ("mastery", mastery(eventTime="2026-11-21T10:00:00")),
    ("curriculum", {"type": "CourseUpserted", "courseSourcedId": "c1", "units": [{"sourcedId": "u", "sortOrder": 1,
                    "lessons": [{"sourcedId": "l", "sortOrder": 1, "resources": [
                        {"sourcedId": "r", "sortOrder": 1, "kind": "Podcast"}]}]}]})])
def test_schema_violation(kind, doc):
    result = only(dec(kind, doc))
    assert isinstance(result, Invalid) and result.reason == "schema_violation"


@pytest.mark.parametrize(("kind", "build"), [("caliper", lambda t: tse(at=t)),
                                             ("submissions", lambda t: submission(eventTime=iso(t))),
                                             ("mastery", lambda t: mastery(eventTime=iso(t)))])
def test_future_event_time_boundary(kind, build):
    assert isinstance(only(dec(kind, build(T0 + SKEW))), Accepted)
    result = only(dec(kind, build(T0 + SKEW + timedelta(microseconds=1))))
    assert isinstance(result, Invalid) and result.reason == "future_event_time"
    assert result.event_id == build(T0)["id"]


def test_future_event_time_uses_configured_skew_and_needs_a_timestamp():
    late = tse(at=T0 + timedelta(seconds=11))
    assert only(dec("caliper", late, rules=Rules(max_clock_skew_seconds=10))).reason == "future_event_time"
    assert isinstance(only(dec("caliper", late, rules=Rules(max_clock_skew_seconds=11))), Accepted)
    assert isinstance(only(dec("caliper", tse(at=T0 + timedelta(days=9)), timestamp=None)), Accepted)


@pytest.mark.parametrize("doc", [
    tse(eventTime="0001-01-01T00:00:00+01:00"), tse(eventTime="9999-12-31T23:59:59-01:00"),
    tse(generated={"items": [{"type": "active", "value": 1, "startDate": "0001-01-01T00:00:00+05:00",
                              "endDate": iso(T0)}]})])
def test_time_out_of_range_in_utc_is_a_schema_violation_not_a_crash(doc):
    # §3.6: a worker never crashes on input; a time that cannot be expressed in UTC is a bad value.
    result = only(dec("caliper", doc))
    assert isinstance(result, Invalid) and result.reason == "schema_violation"


def test_record_timestamp_at_the_end_of_time_does_not_crash():
    assert isinstance(only(dec("caliper", tse(), timestamp=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))), Accepted)


# ---- check order -------------------------------------------------------------------


def test_oversize_and_malformed_is_payload_too_large():
    assert only(dec("caliper", b"{" * 300, rules=Rules(max_payload_bytes=200))).reason == "payload_too_large"


def test_malformed_is_malformed_json_even_if_late():
    old = orjson.dumps(tse(at=T0 - timedelta(days=30)))[:-1]
    assert only(dec("caliper", old, timestamp=T0)).reason == "malformed_json"


def test_schema_violation_wins_over_future_event_time():
    result = only(dec("caliper", tse(at=T0 + timedelta(days=1), action="Wrong")))
    assert result.reason == "schema_violation" and result.event_id == uid(1)


# ---- envelopes and Caliper types ---------------------------------------------------


def test_envelope_gives_one_result_per_event_in_order():
    bad_item = tse(2, generated={"items": [{"type": "active", "value": -5}]})
    results = dec("caliper", envelope(tse(1), bad_item, {"type": "NavigationEvent", "id": uid(3)},
                                      tse(4, at=T0 + SKEW + timedelta(seconds=1)), "junk", tse(6)))
    assert [type(r) for r in results] == [Accepted, Invalid, Ignored, Invalid, Invalid, Accepted]
    assert results[0].event.id == uid(1) and results[5].event.id == uid(6)
    assert (results[1].reason, results[1].event_id) == ("schema_violation", uid(2))
    assert results[2] == Ignored("NavigationEvent")
    assert (results[3].reason, results[3].event_id) == ("future_event_time", uid(4))
    assert (results[4].reason, results[4].event_id) == ("schema_violation", None)


def test_single_event_of_another_type_is_ignored_not_invalid():
    assert dec("caliper", {"type": "SessionEvent", "action": "LoggedIn"}) == [Ignored("SessionEvent")]


@pytest.mark.parametrize("data", [{}, "events", None, 5, {"0": tse()}])
def test_envelope_data_not_a_list_is_one_schema_violation(data):
    result = only(dec("caliper", envelope(data=data)))
    assert isinstance(result, Invalid) and result.reason == "schema_violation"


# ---- curriculum tombstones, null values, event ids ------------------------------------


def test_curriculum_tombstone_is_course_deleted():
    result = only(dec("curriculum", None, key=b"c1"))
    assert isinstance(result, Accepted) and result.event == CourseDeleted(courseSourcedId="c1")


@pytest.mark.parametrize(("kind", "key"), [("curriculum", None), ("curriculum", b""), ("caliper", b"u1"),
                                           ("submissions", b"u1"), ("mastery", b"u1")])
def test_null_value_elsewhere_is_schema_violation(kind, key):
    result = only(dec(kind, None, key=key))
    assert isinstance(result, Invalid) and result.reason == "schema_violation"


@pytest.mark.parametrize(("kind", "doc", "expected"), [
    ("caliper", tse(7, action="Wrong"), uid(7)), ("caliper", tse(id=7, action="Wrong"), None),
    ("submissions", submission(id="sub-1", questionId=None), "sub-1"), ("mastery", mastery(id="m-1", attempt=0), "m-1")])
def test_event_id_is_extracted_when_readable(kind, doc, expected):
    assert only(dec(kind, doc)).event_id == expected


def test_payload_text():
    assert codec.payload_text("café".encode()) == ("café", "utf-8")
    assert codec.payload_text(None) == (None, "utf-8")
    raw = b"\xff\x00\xfe"
    text, encoding = codec.payload_text(raw)
    assert encoding == "base64" and base64.b64decode(text) == raw


# ---- table values ------------------------------------------------------------------


def decision(**over) -> BankDecision:
    return BankDecision(decided_at=T0 + timedelta(microseconds=123), mastery_event_id=uid(8), exercise="ex1",
                        attempt=2, course="c1", subject=None, email="a@b.org", resource_kind="Video",
                        expected_xp=5, xp=3, revision=2)._replace(**over)


def entries(count: int) -> bytes:
    return pack(TimeEntry(1_795_000_000_000_000 + i * 20_000_000, 20_000 + i, uid(100 + i)) for i in range(count))


@pytest.mark.parametrize("pair", [PairState(), PairState(entries=entries(3)), PairState(decision=decision()),
                                  PairState(entries=entries(5), decision=decision(subject="Math", email=None, xp=0)),
                                  PairState(entries=entries(2), explains=("ex1", "ex9")),
                                  PairState(entries=entries(2), decision=decision(), explains=("ex1",))])
def test_pair_round_trip(pair):
    assert state_codec.decode_pair(state_codec.encode_pair(pair)) == pair


def test_pair_round_trips_the_largest_credit_one_valid_event_can_earn():
    # §2.1: value is any finite number >= 0; an anchored item is credited up to its window + 1 s.
    start = T0 - timedelta(days=60)
    item = {"type": "active", "value": 60 * 86400, "startDate": iso(start), "endDate": iso(T0)}
    event = only(dec("caliper", tse(generated={"items": [item]}))).event
    credited, clamped = credit(heartbeat_of(event).active, Rules().max_unanchored_seconds * 1000)
    assert (credited, clamped) == (60 * 86400 * 1000, 0)
    pair = PairState(entries=pack([TimeEntry(0, credited, event.id)]))
    assert state_codec.decode_pair(state_codec.encode_pair(pair)) == pair
    assert unpack(pair.entries) == (TimeEntry(0, credited, event.id),)


def test_pair_with_twenty_heartbeats_and_a_decision_is_small():
    size = len(state_codec.encode_pair(PairState(entries=entries(20), decision=decision())))
    print(f"PairState with 20 entries + decision: {size} bytes")
    assert size < 1024


def test_attempts_round_trip():
    state = AttemptState(completed=2, mastered_before=True,
                         open=OpenAttempt(number=3, total_questions=5, answers=(("q1", True), ("q2", False)),
                                          reported=("q3",)),
                         last_completed=CompletedAttempt(number=2, correct=4, total=5, accuracy=80.0, exercise_xp=2,
                                                         mastered=True, completed_by=uid(9)),
                         seen=frozenset({uid(1), uid(2), "sub-1"}))
    assert state_codec.decode_attempts(state_codec.encode_attempts(state)) == state
    assert state_codec.decode_attempts(state_codec.encode_attempts(AttemptState())) == AttemptState()


def test_state_of_a_typical_pair_stays_compact():
    """20 heartbeats and a banking decision: what a pair costs in the table."""
    from xpbank.contract.times import parse_time

    entries = pack(TimeEntry(1_763_719_200_000_000 + i * 30_000_000, 30_000, f"urn:uuid:3f1c2a40-0000-4000-8000-{i:012d}")
                   for i in range(20))
    decision = BankDecision(
        decided_at=parse_time("2026-11-21T10:30:00Z"), mastery_event_id="urn:uuid:67df0f1f-cacf-53c8-a612-f89547817e68",
        exercise="exercise-fractions-3", attempt=1, course="course-math-grade-5", subject="Math",
        email="learner@example.org", resource_kind="Video", expected_xp=5, xp=5, revision=1,
    )
    encoded = state_codec.encode_pair(PairState(entries=entries, decision=decision))
    print(f"pair state: {len(encoded)} bytes for 20 heartbeats + decision")
    assert len(encoded) < 1024
    assert len(state_codec.encode_pair(PairState(entries=entries))) == 5 + 20 * 32  # 32 bytes per heartbeat


# Values as the previous code wrote them (hex), which tables restored from a changelog still hold.
BEFORE = {
    "pair3": "01000000030006608b015f30000000000000004e20000000000000400080000000000001000006608b02905d000000000000004e210"
             "00000000000400080000000000001010006608b03c18a000000000000004e22000000000000400080000000000001"
             "02",
    "pair_decided": "01000000030006608b015f30000000000000004e20000000000000400080000000000001000006608b02905d00000000000"
                    "0004e21000000000000400080000000000001010006608b03c18a000000000000004e2200000000000040008000000000"
                    "0001025b22323032362d31312d32315431303a30303a30302e3030303132335a222c2275726e3a757569643a303030303"
                    "03030302d303030302d343030302d383030302d303030303030303030303038222c22657831222c322c226331222c6e75"
                    "6c6c2c226140622e6f7267222c22566964656f222c352c332c325d",
    "pair_explained": "0200000002ffffffffffb3b4c000000000000003e8ffffffff00004000800000000000000100000000000000070000000000"
                      "000002000000000000400080000000000000025b5b22323032362d31312d32315431303a30303a30302e3030303132335a22"
                      "2c2275726e3a757569643a30303030303030302d303030302d343030302d383030302d303030303030303030303038222c22"
                      "657831222c322c226331222c6e756c6c2c226140622e6f7267222c22566964656f222c352c332c325d2c5b22657831222c22"
                      "657839225d5d",
    "attempts": "7b22636f6d706c65746564223a322c226d617374657265645f6265666f7265223a747275652c226f70656e223a7b226e756d62"
                "6572223a332c22746f74616c5f7175657374696f6e73223a352c22616e7377657273223a5b5b227131222c747275655d5d2c"
                "227265706f72746564223a5b227133225d7d2c226c6173745f636f6d706c65746564223a6e756c6c2c227365656e223a5b22"
                "7331225d7d",
    "mastery": "7b226964223a226d31222c226576656e7454696d65223a22323032362d31312d32315431303a30303a30302e3030305a222c2261"
               "7474656d7074223a312c22636f75727365536f75726365644964223a226331222c22656d61696c223a6e756c6c7d",
}
NEGATIVE = (TimeEntry(-5_000_000, 1000, "urn:uuid:ffffffff-0000-4000-8000-000000000001"),
            TimeEntry(7, 2, "urn:uuid:00000000-0000-4000-8000-000000000002"))


def test_pairs_written_before_decode_and_encode_to_the_same_bytes():
    cases = {"pair3": PairState(entries(3)), "pair_decided": PairState(entries(3), decision()),
             "pair_explained": PairState(pack(NEGATIVE), decision(), ("ex1", "ex9"))}
    for name, pair in cases.items():
        raw = bytes.fromhex(BEFORE[name])
        assert state_codec.decode_pair(raw) == pair
        assert state_codec.encode_pair(pair) == raw  # the pair format is unchanged (version 1 and 2)


def test_attempts_mastery_refs_and_integers_written_before_version_1_still_decode():
    state = AttemptState(completed=2, mastered_before=True, open=OpenAttempt(number=3, total_questions=5,
                         answers=(("q1", True),), reported=("q3",)), seen=frozenset({"s1"}))
    assert state_codec.decode_attempts(bytes.fromhex(BEFORE["attempts"])) == state
    ref = MasteryRef(id="m1", eventTime=T0, attempt=1, courseSourcedId="c1")
    assert state_codec.decode_mastery_ref(bytes.fromhex(BEFORE["mastery"])) == ref
    assert state_codec.decode_int((1_795_000_000_000_000).to_bytes(8, "big", signed=True)) == 1_795_000_000_000_000
    assert state_codec.decode_int((-1).to_bytes(8, "big", signed=True)) == -1


def test_every_stored_value_starts_with_a_non_zero_version_byte():
    ref = MasteryRef(id="m1", eventTime=T0, attempt=1, courseSourcedId="c1")
    values = [state_codec.encode_pair(PairState()), state_codec.encode_pair(PairState(entries(2), decision(), ("ex1",))),
              state_codec.encode_attempts(AttemptState()), state_codec.encode_mastery_ref(ref),
              state_codec.encode_int(0), state_codec.encode_int(1_795_000_000_000_000), state_codec.encode_int(-1)]
    assert all(value[0] != 0 for value in values)
    assert state_codec.decode_attempts(values[2]) == AttemptState()
    assert state_codec.decode_mastery_ref(values[3]) == ref
    assert [state_codec.decode_int(v) for v in values[4:]] == [0, 1_795_000_000_000_000, -1]


@pytest.mark.parametrize("raw", [b"\x07{}", b"\x02" + bytes(8)])
def test_unknown_versions_are_refused(raw):
    with pytest.raises(ValueError):
        state_codec.decode_attempts(raw) if raw[0] == 7 else state_codec.decode_int(raw)


def test_the_same_attempt_state_always_encodes_to_the_same_bytes():
    ids = [uid(n) for n in range(8)]
    one, other = AttemptState(seen=frozenset(ids)), AttemptState(seen=frozenset(reversed(ids)))
    assert state_codec.encode_attempts(one) == state_codec.encode_attempts(other)
    assert state_codec.decode_attempts(state_codec.encode_attempts(one)) == one


@settings(max_examples=examples(400))
@given(st.datetimes(timezones=st.just(UTC)))
def test_micros_are_exact_over_the_whole_range_of_times(moment):
    """to_micros adds a timedelta's normalised parts: the same integer as dividing it by
    one microsecond, before 1970 too, and back again."""
    assert to_micros(moment) == (moment - EPOCH) // timedelta(microseconds=1)
    assert from_micros(to_micros(moment)) == moment
