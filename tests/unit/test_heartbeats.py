"""The hot path's decoder (contract/heartbeats.py) is never looser than the contract
models: on generated, damaged and hand-picked Caliper records it either declines or
gives exactly the heartbeats of the events the models accept; and a record gives the
same outputs, counters and state through it as through the models alone."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from xpbank.contract import codec, heartbeats
from xpbank.contract import times as times_module
from xpbank.contract.codec import Accepted
from xpbank.contract.heartbeats import decode_heartbeats, heartbeat_of
from xpbank.core.read_time import ENTRY, TimeEntry, entry, entry_id, event_key, has_event, pack, unpack, with_entry
from xpbank.core.rules import Rules
from xpbank.processing.handlers import InputRecord, handle_record
from xpbank.processing.state import MemoryStore

RULES = Rules()
T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)  # never reaches a broker
ZONES = [UTC, None, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5, minutes=30)), timezone(timedelta(hours=14)),
         timezone(timedelta(hours=-23, minutes=-59))]
ODD_TIMES = ["2026-11-21", "2026-11-21T10:00:00", "2026-11-21T24:00:00Z", "20261121T100000Z", "2026-W47-6T10:00Z",
             "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-11-21T10:00:00.1234567Z",
             "2026-11-21T10:00:00,5Z", "2026-11-21 10:00:00Z", "2026-11-21T10:00:00z", "2026-11-21T10:00:60Z",
             "2026-02-30T10:00:00Z", " 2026-11-21T10:00:00Z", "2026-11-21T10:00:00Z ", "2026-11-21T10:00:00+0000",
             "2026-11-21T10:00:00+01:00:30.5", "", "Z"]


def forms(moment: datetime) -> list[str]:
    out = [moment.isoformat(timespec=spec) for spec in ("hours", "minutes", "seconds", "milliseconds", "microseconds")]
    return out + [text.replace("+00:00", "Z") for text in out]


datetimes = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.sampled_from(ZONES))
near = st.integers(-7200, 7200).map(lambda s: T0 + timedelta(seconds=s, microseconds=s * 997 % 1000))
times = st.one_of(near.flatmap(lambda m: st.sampled_from(forms(m))), datetimes.flatmap(lambda m: st.sampled_from(forms(m))),
                  st.sampled_from(ODD_TIMES), st.text(max_size=12))
leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False, allow_infinity=False),
                   st.text(max_size=8), st.sampled_from(["", "/", "a/", "https://x.org/users/", "active", "TimeSpentEvent"]))
json_values = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                           st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                           max_leaves=6)
ids = st.one_of(st.uuids().map(lambda u: f"urn:uuid:{u}"), st.uuids().map(lambda u: f"urn:uuid:{str(u).upper()}"),
                st.uuids().map(lambda u: f"URN:UUID:{u}"), st.uuids().map(lambda u: f"urn:uuid:{u}\n"),
                st.uuids().map(lambda u: f"urn:uuid:{{{u}}}"), st.uuids().map(lambda u: f"urn:uuid:{u.hex}"), st.text(max_size=10))
values = st.one_of(st.integers(0, 5000), st.floats(0, 1e6), st.floats(allow_nan=False, allow_infinity=False),
                   st.integers(2**63, 2**64 - 1), st.just(-0.0), st.booleans(), st.none(), st.just("30"))


@st.composite
def time_spent(draw, user: str = "u1", damaged: int = 2) -> dict:
    """A TimeSpentEvent, valid or nearly so; about one in `damaged` is mutated (0: none)."""
    end = draw(near)
    seconds = draw(st.sampled_from([0, 1, 10, 30, 59.9995, 600]))
    item = {"type": draw(st.sampled_from(["active", "active", "inactive", "Active", "waste"])),
            "value": draw(st.one_of(st.just(seconds), values)) if draw(st.integers(0, 4)) == 0 else seconds}
    if draw(st.booleans()):
        item["startDate"] = (end - timedelta(seconds=draw(st.sampled_from([seconds, seconds, seconds, 0, 1, -5])))).isoformat().replace("+00:00", "Z")
        item["endDate"] = end.isoformat().replace("+00:00", "Z")
    extra = st.fixed_dictionaries({"type": st.sampled_from(["inactive", "active"]), "value": values},
                                  optional={"startDate": times, "endDate": times})
    items = [item] + draw(st.lists(extra, max_size=2)) if damaged and draw(st.integers(0, 3)) == 0 else [item]
    doc = {"id": draw(ids) if draw(st.integers(0, 9)) == 0 else f"urn:uuid:{draw(st.uuids())}",
           "type": "TimeSpentEvent", "action": "SpentTime",
           "actor": {"id": draw(st.sampled_from([user, f"https://roster.example.org/users/{user}", f"{user}/", "u2"]))},
           "object": {"activity": {"id": draw(st.sampled_from(["v1", "https://r.example.org/resources/a1", "a1/"]))}},
           "eventTime": end.isoformat().replace("+00:00", "Z"), "generated": {"items": items}}
    if draw(st.booleans()):
        doc["actor"]["email"] = draw(st.sampled_from(["a@b.org", None, "a@b.org", None, 3]))
    if draw(st.booleans()):
        doc["object"]["course"] = draw(st.sampled_from([{"id": "c1"}, None, {"id": "c1"}, None, {}, {"id": ""}, "c1"]))
    if draw(st.booleans()):
        doc["object"]["subject"] = draw(st.sampled_from(["Math", None, "Math", None, 1]))
    if draw(st.booleans()):  # the Timeback shape's extra fields
        doc |= {"@context": "http://purl.imsglobal.org/ctx/caliper/v1p2", "profile": "TimebackProfile"}
        doc["generated"] |= {"id": doc["id"] + "-metrics", "type": "TimebackTimeSpentMetricsCollection"}
    if draw(st.integers(0, 3)) == 0:  # fields the rules never read, whatever their values
        doc["extensions"], doc["actor"]["type"], doc["object"]["app"] = draw(st.tuples(json_values, json_values, json_values))
    if damaged and draw(st.integers(1, damaged)) == 1:
        for _ in range(draw(st.integers(1, 3))):
            mutate(draw, doc)
    return doc


def paths(doc, prefix=()):
    found = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        found.append((*prefix, key))
        found += paths(value, (*prefix, key))
    return found


def mutate(draw, doc) -> None:
    where = paths(doc)
    if not where:
        return
    path = draw(st.sampled_from(where))
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last, how = path[-1], draw(st.integers(0, 4))
    if how == 0 and isinstance(parent, dict):
        del parent[last]
    elif how == 1 and str(last) in ("eventTime", "startDate", "endDate", "sendTime"):
        parent[last] = draw(times)
    elif how == 2 and str(last) == "id":
        parent[last] = draw(ids)
    elif how == 3 and isinstance(parent, dict):
        parent[draw(st.sampled_from(["type", "action", "value", "items", "extra", "email", "course", "data"]))] = draw(json_values)
    else:
        parent[last] = draw(json_values)


@st.composite
def caliper_records(draw) -> tuple[bytes, datetime | None]:
    """A single event or an envelope; a third of them without damage on purpose."""
    clean = draw(st.integers(0, 2)) == 0
    damaged = 0 if clean else 2
    if draw(st.booleans()):
        doc = draw(time_spent(damaged=damaged))
    else:
        odd = st.one_of(st.just({"id": "x", "type": "NavigationEvent"}), json_values)
        events = draw(st.lists(st.one_of(time_spent(), time_spent(), time_spent("u2"), odd) if not clean and draw(st.booleans())
                               else st.one_of(time_spent(damaged=12 * damaged), time_spent("u2", damaged=12 * damaged)),
                               min_size=0, max_size=5))
        send_time = draw(st.one_of(times, st.none())) if not clean and draw(st.booleans()) else T0.isoformat()
        doc = {"sensor": "https://app.example.org", "sendTime": send_time,
               "dataVersion": "http://purl.imsglobal.org/ctx/caliper/v1p2", "data": events}
        if not clean and draw(st.integers(0, 4)) == 0:
            mutate(draw, doc)
    raw = orjson.dumps(doc)
    damage = draw(st.integers(0, 19)) if not clean else -1
    if damage == 0:
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"NaN", b"1e400", b"\\ud800", b"\xff", b",", b"}", b" "])) + raw[at:]
    elif damage == 1:
        raw = raw.replace(b"30", draw(st.sampled_from([b"1e400", b"Infinity", b"3e1", b"30.000000000000001",
                                                       b"123456789012345678901234567890"])), 1)
    late = st.just(T0 + timedelta(hours=3))
    timestamp = draw(st.one_of(st.none(), late, late, near) if clean else
                     st.one_of(st.none(), late, near, st.just(T0 - timedelta(hours=3))))
    return raw, timestamp


def full_path(raw: bytes, timestamp: datetime | None):
    return codec.decode("caliper", raw, b"u1", timestamp, RULES)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(caliper_records())
def test_the_fast_path_gives_what_the_models_accept_or_declines(record):
    raw, timestamp = record
    fast = decode_heartbeats(raw, timestamp, RULES.max_payload_bytes, RULES.max_clock_skew_us)
    event("fast path " + ("declined" if fast is None else "accepted"))
    if fast is None:
        return
    full = full_path(raw, timestamp)
    assert all(isinstance(result, Accepted) for result in full), full
    assert fast == [heartbeat_of(result.event) for result in full]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(caliper_records(), st.sampled_from([None, "u1", "u2"]), st.booleans())
def test_a_record_gives_the_same_outputs_counters_and_state_with_or_without_the_fast_path(record, owner, rekeyed):
    raw, timestamp = record
    rec = InputRecord("learning.caliper.v1", b"u1", raw, timestamp, 0, 7, "learning.caliper.v1")

    def run(fast: bool):
        store = MemoryStore()
        store.set_watermark("u1", int((T0 - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)))
        import xpbank.processing.handlers as handlers
        decoder, hot = handlers.decode_heartbeats, handlers.owner_heartbeats
        if not fast:  # the models alone
            handlers.decode_heartbeats = handlers.owner_heartbeats = lambda *a: None
        try:
            handled = handle_record(store, rec, RULES, owner=owner, rekeyed=rekeyed)
        finally:
            handlers.decode_heartbeats, handlers.owner_heartbeats = decoder, hot
        outputs = [(o.topic, o.key, o.value.model_dump(mode="json")) for o in handled.outputs]
        return outputs, dict(handled.counts), handled.foreign_users, store.learner_pairs, store.watermarks, store.positions

    assert run(True) == run(False)


# ---- hand-picked records -------------------------------------------------------------


def beat(**over) -> dict:
    doc = {"id": "urn:uuid:3f1c2a40-0000-4000-8000-000000000001", "type": "TimeSpentEvent", "action": "SpentTime",
           "actor": {"id": "https://roster.example.org/users/u1", "email": "a@b.org"},
           "object": {"activity": {"id": "https://r.example.org/resources/v1"}, "course": {"id": "c1"}, "subject": "Math"},
           "eventTime": "2026-11-21T10:00:30.000Z",
           "generated": {"items": [{"type": "active", "value": 30, "startDate": "2026-11-21T10:00:00.000Z",
                                    "endDate": "2026-11-21T10:00:30.000Z"}]}}
    return doc | over


def envelope(*events) -> dict:
    return {"sensor": "s", "sendTime": "2026-11-21T10:01:00Z", "dataVersion": "v", "data": list(events)}


def decode(doc, timestamp: datetime | None = T0):
    return decode_heartbeats(orjson.dumps(doc), timestamp, RULES.max_payload_bytes, RULES.max_clock_skew_us)


ACCEPTED = {
    "bench shape": beat(),
    "minimal": beat(actor={"id": "u1"}, object={"activity": {"id": "v1"}}, generated={"items": [{"type": "active", "value": 5}]}),
    "no items": beat(generated={}),
    "uppercase id": beat(id="urn:uuid:3F1C2A40-0000-4000-8000-0000000000AB"),
    "an offset": beat(eventTime="2026-11-21T12:00:30+02:00"),
    "null course and email": beat(actor={"id": "u1", "email": None}, object={"activity": {"id": "v1"}, "course": None}),
    "a float value": beat(generated={"items": [{"type": "active", "value": 59.9995}]}),
    "the largest int": beat(generated={"items": [{"type": "active", "value": 2**64 - 1}]}),
    "minus zero": beat(generated={"items": [{"type": "active", "value": -0.0}]}),
    "inactive with dates": beat(generated={"items": [{"type": "inactive", "value": 3, "startDate": "2026-11-21T10:00:00Z"}]}),
    "an envelope": envelope(beat(), beat(id="urn:uuid:3f1c2a40-0000-4000-8000-000000000002"), beat(actor={"id": "u2"})),
    "an empty envelope": envelope(),
    # each window starts where the one before ended (the decoder keeps a window's end for
    # the next start), its end the event's time or not
    "contiguous windows": envelope(*(
        beat(id=f"urn:uuid:3f1c2a40-0000-4000-8000-00000000001{n}", eventTime=event_time,
             generated={"items": [{"type": "active", "value": 30, "startDate": start, "endDate": end}]})
        for n, (start, end, event_time) in enumerate([
            ("2026-11-21T10:00:00.000Z", "2026-11-21T10:00:30.000Z", "2026-11-21T10:00:30.000Z"),
            ("2026-11-21T10:00:30.000Z", "2026-11-21T10:01:00.000Z", "2026-11-21T10:01:00.500Z"),
            ("2026-11-21T10:01:00.000Z", "2026-11-21T10:01:30.000Z", "2026-11-21T10:01:30.000Z")]))),
    "extra fields": beat(**{"@context": ["a", {"b": 1e300}], "extensions": {"x": [None, True]}}),
    "the Timeback shape": beat(profile="TimebackProfile", edApp={"id": "https://app.example.org"},
                               actor={"id": "u1", "type": "TimebackUser", "email": "a@b.org"},
                               object={"id": "https://app.example.org/a/1", "type": "TimebackActivityContext",
                                       "activity": {"id": "v1", "name": "Video 1"}, "app": {"name": "App"}},
                               generated={"id": "urn:uuid:3f1c2a40-0000-4000-8000-000000000001-metrics",
                                          "type": "TimebackTimeSpentMetricsCollection",
                                          "items": [{"type": "active", "value": 5}]}),
}
DECLINED = {
    "naive time": beat(eventTime="2026-11-21T10:00:30"),
    "a bool value": beat(generated={"items": [{"type": "active", "value": True}]}),
    "a string value": beat(generated={"items": [{"type": "active", "value": "30"}]}),
    "negative value": beat(generated={"items": [{"type": "active", "value": -1}]}),
    "window reversed": beat(generated={"items": [{"type": "active", "value": 1, "startDate": "2026-11-21T10:00:30Z",
                                                  "endDate": "2026-11-21T10:00:00Z"}]}),
    "empty course": beat(object={"activity": {"id": "v1"}, "course": {}}),
    "numeric email": beat(actor={"id": "u1", "email": 5}),
    "empty actor id": beat(actor={"id": ""}),
    "id without prefix": beat(id="3f1c2a40-0000-4000-8000-000000000001"),
    "id with a newline": beat(id="urn:uuid:3f1c2a40-0000-4000-8000-000000000001\n"),
    "other type": beat(type="NavigationEvent"),
    "other action": beat(action="Paused"),
    "items null": beat(generated={"items": None}),
    "an envelope with a navigation event": envelope(beat(), {"id": "x", "type": "NavigationEvent"}),
    "an envelope with a bad sendTime": envelope(beat()) | {"sendTime": "yesterday"},
    "a window ending before the previous event's end, where it starts": envelope(beat(), beat(
        id="urn:uuid:3f1c2a40-0000-4000-8000-000000000002",
        generated={"items": [{"type": "active", "value": 1, "startDate": "2026-11-21T10:00:30.000Z",
                              "endDate": "2026-11-21T10:00:29.999Z"}]})),
    "data not a list": {"data": {"a": 1}},
    "underflow once in UTC": beat(eventTime="0001-01-01T00:00:00+01:00"),
    "a 24:00 time": beat(eventTime="2026-11-21T24:00:00Z"),
    "a field outside the IMS and Timeback shapes": beat(learnerMood="calm"),
}


@pytest.mark.parametrize("name", ACCEPTED)
def test_the_fast_path_takes_the_common_shapes(name):
    doc = ACCEPTED[name]
    fast = decode(doc)
    assert fast is not None
    full = full_path(orjson.dumps(doc), T0)
    assert fast == [heartbeat_of(result.event) for result in full]


@pytest.mark.parametrize("name", DECLINED)
def test_the_fast_path_leaves_the_rest_to_the_models(name):
    assert decode(DECLINED[name]) is None


@pytest.mark.parametrize("extra", [b'"\xff"', b'"\xed\xa0\x80"', b"1e400", b"-1e400", b"[" * 1030 + b"]" * 1030])
@pytest.mark.parametrize("name", ["@context", "unknown"])
def test_what_orjson_refuses_in_a_field_the_rules_never_read_is_left_to_the_models(name, extra):
    """msgspec skips unknown fields without checking their UTF-8 or numbers: such a record
    is the models' (a dead letter: orjson refuses it), whatever the field's name."""
    raw = orjson.dumps(beat())[:-1] + b',"' + name.encode() + b'":' + extra + b"}"
    assert decode_heartbeats(raw, T0, RULES.max_payload_bytes, RULES.max_clock_skew_us) is None
    assert [type(result).__name__ for result in full_path(raw, T0)] == ["Invalid"]


def test_size_json_and_future_event_time_are_left_to_the_models():
    assert decode_heartbeats(b"x" * 10, T0, 5, RULES.max_clock_skew_us) is None
    assert decode_heartbeats(b"{nope", T0, RULES.max_payload_bytes, RULES.max_clock_skew_us) is None
    assert decode_heartbeats(None, T0, RULES.max_payload_bytes, RULES.max_clock_skew_us) is None
    assert decode(beat(), T0 - timedelta(seconds=271)) is None  # 301 s before the event
    assert decode(beat(), T0 - timedelta(seconds=270)) is not None  # 300 s: not "more than"
    assert decode(beat(), None) is not None
    assert decode(beat(), datetime(2026, 11, 21, 10, 0)) is None  # naive: the models decide


# ---- the read time's packed entries --------------------------------------------------


@given(st.uuids(), st.booleans())
def test_canonical_ids_and_keys_are_what_uuid_gives(value, upper):
    text = f"urn:uuid:{str(value).upper() if upper else value}"
    assert entry_id(text) == f"urn:uuid:{uuid.UUID(text[9:])}"
    assert event_key(text) == uuid.UUID(text[9:]).bytes


entries_strategy = st.lists(st.tuples(st.integers(-(2**62), 2**62), st.integers(0, 2**62), st.uuids()), max_size=12,
                            unique_by=lambda e: e[2])


@given(entries_strategy)
def test_entries_added_in_any_order_are_kept_in_the_order_of_their_values(items):
    packed = b""
    for time_us, credited, key in items:
        packed = with_entry(packed, entry(time_us, credited, key.bytes))
    as_entries = [TimeEntry(t, c, f"urn:uuid:{k}") for t, c, k in items]
    assert unpack(packed) == tuple(sorted(as_entries)) and packed == pack(as_entries)
    for time_us, credited, key in items:
        assert has_event(packed, key.bytes)


def test_an_id_found_across_two_entries_is_not_an_event():
    a, b = uuid.UUID(int=0xAA << 120 | 1), uuid.UUID(int=2)
    packed = entry(1, 2, a.bytes) + entry(3, 4, b.bytes)
    straddling = packed[24:40]  # the end of one entry and the start of the next
    assert not has_event(packed, straddling) and has_event(packed, b.bytes)
    assert len(packed) == 2 * ENTRY.size


ID_CHARS = "0123456789abcdefABCDEFg- \t\n\x0b\x0c\r:{}é٣０"  # with non-ASCII digits and whitespace


@st.composite
def near_ids(draw) -> str:
    """Valid `urn:uuid:` ids with a few characters replaced, inserted or removed."""
    text = list(f"urn:uuid:{draw(st.uuids())}")
    for _ in range(draw(st.integers(0, 3))):
        at, how = draw(st.integers(0, len(text) - 1)), draw(st.integers(0, 2))
        char = draw(st.sampled_from(ID_CHARS))
        if how == 0:
            text[at] = char
        elif how == 1:
            text.insert(at, char)
        else:
            del text[at]
    return "".join(text)


@settings(max_examples=600, deadline=None)
@given(st.one_of(near_ids(), st.text(max_size=50)))
def test_the_id_check_takes_exactly_the_ids_the_models_pattern_takes(candidate):
    from xpbank.contract.events import URN_UUID

    takes = decode(beat(id=candidate)) is not None
    assert takes == bool(re.fullmatch(URN_UUID.pattern[1:-1], candidate))  # pydantic's `$`: the end of the text


def reference_micros(text: str) -> int | None:
    """What the models make of a time: times.parse_time, in µs (None: refused)."""
    from xpbank.contract.times import parse_time, to_micros

    try:
        return to_micros(parse_time(text))
    except ValueError:
        return None


def decoded_micros(text: str) -> int | None:
    try:
        return times_module.text_micros(text)
    except ValueError:
        return None


def near_millis_times(moment: datetime) -> list[str]:
    """The shape apps send, and 24-character texts one edit away from it."""
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [text, text[:10] + " " + text[11:], text[:19] + ",123Z", text[:23] + "z", text[:19] + ".1234", "x" + text[1:],
            text[:5] + "13" + text[7:], text[:17] + "60" + text[19:], text[:4] + "W" + text[5:], text[:20] + "\u0661\u0662\u0663Z",
            text[:19] + "+0100", text[:19] + "-0530", text[:16] + ".123+01:00", text[:21] + "+01"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(datetimes.flatmap(lambda m: st.sampled_from(near_millis_times(m))),
                          near.flatmap(lambda m: st.sampled_from(near_millis_times(m))), times), min_size=1, max_size=12),
       st.randoms(use_true_random=False))
def test_a_time_is_read_as_the_models_read_it_whatever_was_read_before(texts, random):
    """The decoders keep the seconds and fractions of times they parsed (contract/times.text_micros):
    a text read again, or made of parts read before, gives the models' value or declines
    as they refuse, in any order."""
    mixed = texts + [a[:19] + b[19:] for a in texts for b in texts if len(a) == len(b) == 24]
    random.shuffle(mixed)
    for text in mixed + mixed:
        assert decoded_micros(text) == reference_micros(text), text


def test_times_parsed_in_two_parts_are_forgotten_past_the_bound(monkeypatch):
    monkeypatch.setattr(times_module, "_SECONDS", {})
    start = datetime(2026, 11, 21, tzinfo=UTC)
    for second in range(times_module._SECONDS_KEPT + 10):
        text = (start + timedelta(seconds=second, milliseconds=second % 1000)).isoformat(timespec="milliseconds")
        assert decoded_micros(text.replace("+00:00", "Z")) == reference_micros(text)
    assert 0 < len(times_module._SECONDS) <= times_module._SECONDS_KEPT
    assert decoded_micros("2026-11-21T00:00:01.001Z") == reference_micros("2026-11-21T00:00:01.001Z")


def test_checked_ids_are_forgotten_past_the_bound_and_a_refused_one_is_never_kept(monkeypatch):
    monkeypatch.setattr(heartbeats, "_SEGMENTS_KEPT", 4)
    monkeypatch.setattr(heartbeats, "_SEGMENTS", {})
    too_long = "u" * (RULES.max_id_length + 1)
    for n in range(12):
        beats = decode(beat(actor={"id": f"https://roster.example.org/users/u{n}"}))
        assert beats is not None and beats[0].user == f"u{n}"
        assert decode(beat(actor={"id": too_long})) is None
        assert decode(beat(actor={"id": f"https://roster.example.org/users/u{n}"}))[0].user == f"u{n}"
    kept = heartbeats._SEGMENTS[RULES.max_id_length]
    assert 0 < len(kept) <= 4 and too_long not in kept
