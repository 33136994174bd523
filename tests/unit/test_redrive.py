"""Dead letters read back and re-driven (the pure parts): reading a letter, the filters,
`--since`, the learners a payload names, and the plan that sends each original once."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from types import SimpleNamespace

import orjson
import pytest

from xpbank.config import ConfigError
from xpbank.kafka.input_letters import INPUT_LETTERS
from xpbank.kafka.redrive import Filters, matches, parse_since, plan, users_of

PREFIX = "p."
NOW = datetime(2030, 5, 6, 12, 0, tzinfo=UTC)  # a clock handed in: nothing here reaches a broker


def message(position: int, **letter) -> SimpleNamespace:
    doc = {"id": f"d{position}", "type": "DeadLetter", "generation": 1, "reason": "unknown_course", "detail": "course c1",
           "topic": "p.learning.submissions.v1", "partition": 2, "offset": 40, "key": "u1",
           "timestamp": "2030-05-06T11:00:00.000Z", "eventId": "e1",
           "payload": '{"type": "AttemptFinalized", "userSourcedId": "u1"}', "payloadEncoding": "utf-8"} | letter
    return SimpleNamespace(topic="p.xp.dead-letters.v1", partition=0, offset=position, value=orjson.dumps(doc))


def test_a_dead_letter_reads_back_as_the_original_record():
    letter = INPUT_LETTERS.letter(message(7), PREFIX)
    assert (letter.id, letter.origin) == ("p.xp.dead-letters.v1/0/7", "p.learning.submissions.v1/2/40")
    assert (letter.key, letter.users, letter.timestamp_ms) == (b"u1", ("u1",), int(datetime(2030, 5, 6, 11, tzinfo=UTC).timestamp() * 1000))
    raw = b"\xff\x00 not utf-8"
    binary = INPUT_LETTERS.letter(message(8, payload=base64.b64encode(raw).decode(), payloadEncoding="base64"), PREFIX)
    assert binary.value == raw and binary.users == ("u1",)  # a payload naming nobody: its key
    assert INPUT_LETTERS.letter(SimpleNamespace(topic="t", partition=0, offset=1, value=b"{oops"), PREFIX) is None


def test_only_input_topics_of_this_deployment_are_targets_and_never_the_curriculum():
    def target(**letter):
        return INPUT_LETTERS.target(INPUT_LETTERS.letter(message(1, **letter), PREFIX), PREFIX)

    assert target() == ("p.learning.submissions.v1", "")
    assert target(topic="p.learning.caliper.v1") == ("p.learning.caliper.v1", "")
    assert target(topic="q.learning.caliper.v1")[0] is None  # another prefix's topic
    assert target(topic="p.xp.facts.v1")[0] is None
    assert "publish the course again" in target(topic="p.learning.curriculum.v1")[1]
    assert target(payload=None)[0] is None


def test_filters_by_reason_topic_time_and_learner():
    letter = INPUT_LETTERS.letter(message(1), PREFIX)
    at = letter.timestamp_ms
    assert matches(letter, Filters(), PREFIX)
    assert matches(letter, Filters(reasons=frozenset({"unknown_course", "too_late"}), topics=frozenset({"learning.submissions.v1"}),
                                   since_ms=at, users=frozenset({"u1"})), PREFIX)
    for no in (Filters(reasons=frozenset({"too_late"})), Filters(topics=frozenset({"learning.caliper.v1"})),
               Filters(since_ms=at + 1), Filters(users=frozenset({"u2"}))):
        assert not matches(letter, no, PREFIX)


def test_since_is_a_time_with_a_zone_or_a_duration_back_from_now():
    assert parse_since("30m", NOW) == int(datetime(2030, 5, 6, 11, 30, tzinfo=UTC).timestamp() * 1000)
    assert parse_since("7d", NOW) == int(datetime(2030, 4, 29, 12, tzinfo=UTC).timestamp() * 1000)
    assert parse_since("2030-05-06T10:00:00+02:00", NOW) == int(datetime(2030, 5, 6, 8, tzinfo=UTC).timestamp() * 1000)
    for bad in ("yesterday", "2030-05-06T10:00:00", "5w"):
        with pytest.raises(ConfigError, match="--since"):
            parse_since(bad, NOW)


def test_the_learners_a_payload_names():
    actor = {"id": "https://roster.example/users/u7/"}
    envelope = {"data": [{"actor": actor}, {"actor": "u8"}, {"actor": actor}, "junk"]}
    assert users_of(orjson.dumps(envelope)) == ("u7", "u8")
    assert users_of(orjson.dumps({"userSourcedId": "u9", "type": "AttemptStarted"})) == ("u9",)
    assert users_of(b"{broken") == () and users_of(None) == ()


def test_each_original_is_sent_once_and_never_again():
    sources = {INPUT_LETTERS.topic: INPUT_LETTERS}
    first, repeated, other = (INPUT_LETTERS.letter(m, PREFIX) for m in (message(1), message(2), message(3, offset=41)))
    curriculum = INPUT_LETTERS.letter(message(4, topic="p.learning.curriculum.v1"), PREFIX)
    planned = plan([first, repeated, other, curriculum], sources, {}, PREFIX)
    # the letter published twice for one record (a crash, an envelope's two events): one send
    assert [letter for letter, _ in planned.send] == [first, other]
    assert planned.done_before == [repeated] and [letter for letter, _ in planned.refused] == [curriculum]
    again = plan([first, repeated, other], sources, {first.origin: {"deadLetter": first.id}}, PREFIX)
    assert [letter for letter, _ in again.send] == [other] and again.done_before == [first, repeated]
