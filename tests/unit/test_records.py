"""Record lines (SPEC §5): one Kafka record per JSON line, for produce / simulate / dump."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from xpbank.contract.events import ExerciseMastered
from xpbank.contract.records import OutputRecord
from xpbank.cli.records import RecordLineError, output_line, parse_line, read_lines

T0 = datetime(2026, 11, 21, 10, 0, 5, tzinfo=UTC)
VALUE = {"id": "urn:uuid:00000000-0000-4000-8000-000000000001", "type": "TimeSpentEvent",
         "eventTime": "2026-11-21T09:00:00Z", "nested": {"é": [1, 2.5, None]}}


def line(**doc) -> str:
    return orjson.dumps({"topic": "learning.caliper.v1", "key": "u1", **doc}).decode()


def test_value_line():
    record = parse_line(line(value=VALUE, timestamp="2026-11-21T10:00:05Z"), 4)
    assert record.topic == "learning.caliper.v1" and record.topic_full_name == "learning.caliper.v1"
    assert record.key == b"u1"
    assert orjson.loads(record.value) == VALUE
    assert record.timestamp == T0
    assert (record.partition, record.offset) == (None, 4)


@pytest.mark.parametrize("raw", ["{not json", "café \u2603", "", '{"a": 1}  '])
def test_raw_line_is_exactly_that_text_in_utf8(raw):
    record = parse_line(line(raw=raw, timestamp="2026-11-21T10:00:05Z"), 1)
    assert record.value == raw.encode("utf-8")


def test_raw_wins_over_value():
    assert parse_line(line(raw="x", value=VALUE), 1).value == b"x"


def test_null_value_is_a_tombstone():
    record = parse_line(orjson.dumps({"topic": "learning.curriculum.v1", "key": "c1", "value": None}), 2)
    assert record.topic == "learning.curriculum.v1" and record.key == b"c1" and record.value is None


@pytest.mark.parametrize(("key", "expected"), [(None, None), ("u1", b"u1"), (5, b"5"), ("é", "é".encode())])
def test_keys(key, expected):
    assert parse_line(line(key=key, value=VALUE), 1).key == expected


def test_missing_key_is_none():
    assert parse_line(orjson.dumps({"topic": "learning.caliper.v1", "value": VALUE}), 1).key is None


# ---- timestamps --------------------------------------------------------------------


def test_explicit_timestamp_wins_and_is_utc():
    record = parse_line(line(value=VALUE, timestamp="2026-11-21T12:00:05+02:00"), 1)
    assert record.timestamp == T0 and record.timestamp.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("timestamp", ["absent", None])
def test_timestamp_falls_back_to_value_event_time(timestamp):
    doc = {"value": VALUE} if timestamp == "absent" else {"value": VALUE, "timestamp": timestamp}
    assert parse_line(line(**doc), 1).timestamp == datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("doc", [{"value": {"type": "CourseUpserted"}}, {"raw": "garbage"}, {"value": None},
                                 {"value": [1, 2]}, {"value": {"eventTime": "not a time"}}])
def test_timestamp_falls_back_to_now(doc):
    before = datetime.now(UTC)
    stamp = parse_line(line(**doc), 1).timestamp
    assert before <= stamp <= datetime.now(UTC)


@pytest.mark.parametrize("bad", ["2026-11-21T10:00:05", "yesterday", 1795000000])
def test_bad_timestamp_is_a_line_error(bad):
    with pytest.raises(RecordLineError, match="line 6"):
        parse_line(line(value=VALUE, timestamp=bad), 6)


# ---- line errors -------------------------------------------------------------------


@pytest.mark.parametrize(("text", "fragment"), [
    ("{not json", "not JSON"), ("", "not JSON"), ("[1, 2]", "JSON object"), ('"text"', "JSON object"),
    ('{"key": "u1", "value": {}}', "topic"), ('{"topic": 5, "value": {}}', "topic"),
    ('{"topic": "learning.caliper.v1", "key": "u1"}', "value"),
    ('{"topic": "learning.unknown.v1", "value": {}}', "unknown topic 'learning.unknown.v1'")])
def test_line_errors_name_the_line(text, fragment):
    with pytest.raises(RecordLineError, match="line 7") as info:
        parse_line(text, 7)
    assert fragment in str(info.value)


def test_read_lines_reports_the_line_number_of_the_bad_line():
    lines = [line(value=VALUE), "", '{"topic": "nope", "value": {}}']
    records = read_lines(lines)
    assert next(records).offset == 1
    with pytest.raises(RecordLineError, match="line 3"):
        next(records)


def test_read_lines_skips_blank_lines_but_keeps_numbering():
    records = list(read_lines([line(value=VALUE), "   ", "\n", line(value=None).encode() + b"\n"]))
    assert [r.offset for r in records] == [1, 4]
    assert records[1].value is None


# ---- prefixes and topic override -----------------------------------------------------


def test_prefixed_topic_is_resolved_to_its_registry_name():
    record = parse_line(orjson.dumps({"topic": "dev.learning.mastery.v1", "value": {}}), 1, prefix="dev.")
    assert record.topic == "learning.mastery.v1" and record.topic_full_name == "dev.learning.mastery.v1"


def test_unprefixed_name_gets_the_prefix_and_unknown_prefixed_name_is_rejected():
    record = parse_line(line(value=VALUE), 1, prefix="dev.")
    assert record.topic == "learning.caliper.v1" and record.topic_full_name == "dev.learning.caliper.v1"
    with pytest.raises(RecordLineError, match="unknown topic"):
        parse_line(orjson.dumps({"topic": "dev.learning.caliper.v1", "value": {}}), 1)
    with pytest.raises(RecordLineError, match="unknown topic"):
        parse_line(orjson.dumps({"topic": "prod.learning.caliper.v1", "value": {}}), 1, prefix="dev.")


def test_topic_override():
    record = parse_line(orjson.dumps({"value": VALUE}), 1, topic="learning.submissions.v1")
    assert record.topic == "learning.submissions.v1"
    record = parse_line(line(value=VALUE), 1, prefix="p.", topic="p.learning.mastery.v1")
    assert record.topic == "learning.mastery.v1" and record.topic_full_name == "p.learning.mastery.v1"
    with pytest.raises(RecordLineError, match="unknown topic"):
        parse_line(line(value=VALUE), 1, topic="xp.nope.v1")


# ---- output lines ------------------------------------------------------------------


def test_output_line_round_trips_through_parse_line():
    mastered = ExerciseMastered(id=VALUE["id"], userSourcedId="u1", exerciseSourcedId="ex1", courseSourcedId="c1",
                                attempt=1, accuracy=100.0, exerciseXp=3, eventTime="2026-11-21T11:00:05+01:00")
    out = output_line(OutputRecord("learning.mastery.v1", "u1", mastered, T0), prefix="dev.", offset=3)
    doc = orjson.loads(out)
    assert doc["topic"] == "dev.learning.mastery.v1" and doc["key"] == "u1" and doc["offset"] == 3
    assert doc["timestamp"] == "2026-11-21T10:00:05.000Z" and doc["value"]["eventTime"] == "2026-11-21T10:00:05.000Z"
    record = parse_line(out, 1, prefix="dev.")
    assert ExerciseMastered.model_validate_json(record.value) == mastered
    assert (record.topic, record.key, record.timestamp) == ("learning.mastery.v1", b"u1", T0)


def test_output_line_without_timestamp():
    mastered = ExerciseMastered(id="m", userSourcedId="u1", exerciseSourcedId="ex1", courseSourcedId="c1",
                                attempt=1, accuracy=90.0, exerciseXp=1, eventTime=T0)
    assert orjson.loads(output_line(OutputRecord("learning.mastery.v1", None, mastered, None)))["timestamp"] is None
