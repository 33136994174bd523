"""The gateway's pure parts: Caliper envelope checks and the per-learner split (IMS
Caliper 1.2 §5.2, §6.1; SPEC §2.1), submissions/masteries/courses against the contract's
models, tokens and settings."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st
import pytest

from tests.builders import at, submission
from tests.caliper_fixtures import ROSTER, SENSOR, V1P1, envelope, ims_examples, timeback_examples, timeback_time_spent
from xpbank.config import ConfigError
from xpbank.contract import codec
from xpbank.core.rules import Rules
from xpbank.gateway import caliper, inputs
from xpbank.gateway.problems import Refused
from xpbank.gateway.settings import GatewaySettings, parse_tokens


def split(doc) -> caliper.Envelope:
    return caliper.split(orjson.dumps(doc))


def refused(call, *args) -> Refused:
    with pytest.raises(Refused) as caught:
        call(*args)
    return caught.value


# ---- Caliper: what is accepted and how it is split -------------------------------------


@pytest.mark.parametrize("name", ["active", "inactive", "waste", "slim"])
def test_a_timeback_example_is_one_record_keyed_by_its_learner_and_kept_byte_for_byte(name):
    body = orjson.dumps(timeback_examples()[name], option=orjson.OPT_INDENT_2)
    split_ = caliper.split(body)
    assert [(r.key, r.value, r.events) for r in split_.records] == [(b"student-0001", body, 1)]
    assert split_.sensor == SENSOR


@pytest.mark.parametrize("name", ["single", "batch", "mixed", "tool_use", "v1p1", "thinned"])
def test_ims_fixture_shapes_are_accepted_and_every_entry_travels(name):
    doc = ims_examples()[name]
    records = split(doc).records
    sent = [event for r in records for event in orjson.loads(r.value)["data"]]
    assert sorted(map(orjson.dumps, sent)) == sorted(map(orjson.dumps, doc["data"]))
    for record in records:
        value = orjson.loads(record.value)
        assert {k: value[k] for k in ("sensor", "sendTime", "dataVersion")} == {k: doc[k] for k in ("sensor", "sendTime", "dataVersion")}


def test_three_learners_make_three_records_keyed_by_each_with_their_events_in_order():
    events = [timeback_time_spent(user, t=-t) for t, user in enumerate(["ann", "bob", "ann", "cy", "bob"], 1)]
    records = split(envelope(events)).records
    assert [r.key for r in records] == [b"ann", b"bob", b"cy"]
    by_key = {r.key: orjson.loads(r.value)["data"] for r in records}
    assert by_key[b"ann"] == [events[0], events[2]] and by_key[b"bob"] == [events[1], events[4]]
    assert by_key[b"cy"] == [events[3]]


def test_events_without_a_learner_go_one_by_one_keyed_by_the_sensor():
    no_actor = timeback_time_spent("ann")
    del no_actor["actor"]
    string_actor = timeback_time_spent("bob") | {"actor": f"{ROSTER}/users/bob"}
    entity = {"id": "https://example.edu/users/1", "type": "Person"}
    doc = envelope([timeback_time_spent("cy"), no_actor, string_actor, entity, "https://example.edu/x", None])
    records = split(doc).records
    assert [r.key for r in records] == [b"cy"] + [SENSOR.encode()] * 5
    assert [orjson.loads(r.value)["data"] for r in records[1:]] == [[no_actor], [string_actor], [entity],
                                                                    ["https://example.edu/x"], [None]]


def test_the_worker_reads_each_split_record_as_the_events_of_its_key():
    """A record keyed by a learner holds only that learner's events: the worker applies it
    in place; what names no learner is dead-lettered by the worker with its reason."""
    no_actor = timeback_time_spent("ann")
    del no_actor["actor"]
    doc = envelope([timeback_time_spent(u, t=-n) for n, u in enumerate(["ann", "bob", "ann"], 1)] + [no_actor])
    decoded = {r.key: codec.decode("caliper", r.value, r.key, None, Rules()) for r in split(doc).records}
    assert {k: sorted(type(d).__name__ for d in v) for k, v in decoded.items()} == {
        b"ann": ["Accepted", "Accepted"], b"bob": ["Accepted"], SENSOR.encode(): ["Invalid"]}
    assert all(d.event.user == k.decode() for k, v in decoded.items() if k != SENSOR.encode() for d in v)
    [invalid] = decoded[SENSOR.encode()]
    assert invalid.reason == "schema_violation" and "actor" in invalid.detail


def test_the_1_1_data_version_is_accepted():
    assert split(envelope([timeback_time_spent()], version=V1P1)).events == 1


# ---- Caliper: what is refused ------------------------------------------------------


@pytest.mark.parametrize(("body", "says"), [
    (b"THIS IS NOT VALID JSON", "malformed JSON"),
    (b"[]", "no envelope: the body is a JSON array"),
    (b'"text"', "no envelope: the body is a JSON string"),
    (orjson.dumps(timeback_time_spent()), "single Caliper event"),
    (orjson.dumps({"sendTime": at(0), "dataVersion": caliper.V1P2, "data": [{}]}), "missing sensor"),
    (orjson.dumps({"sensor": "s", "data": [{}]}), "missing sendTime, dataVersion"),
    (orjson.dumps({"sensor": "s", "sendTime": at(0), "dataVersion": caliper.V1P2}), "missing data"),
    (orjson.dumps(envelope([{}]) | {"extra": 1}), "does not allow in an envelope: extra"),
    (orjson.dumps(envelope([])), "data must be an array of one or more"),
    (orjson.dumps(envelope([]) | {"data": {"id": "x"}}), "data must be an array"),
    (orjson.dumps(envelope([{}]) | {"sendTime": "yesterday"}), "sendTime"),
    (orjson.dumps(envelope([{}]) | {"sendTime": at(0)[:-1]}), "zone"),  # no zone
    (orjson.dumps(envelope([{}]) | {"sensor": ""}), "sensor must be a non-empty string"),
    (orjson.dumps(envelope([{}]) | {"dataVersion": 2}), "dataVersion must be a string"),
    (orjson.dumps({"sensor": "s", "sendTime": at(0), "data": [{"@type": "http://purl.imsglobal.org/caliper/v1/Event"}]}),
     "missing dataVersion"),  # a Caliper 1.0 envelope
    (b'{"sensor": "a", ' + orjson.dumps(envelope([{}]))[1:], "given twice"),
    (orjson.dumps(envelope([{"n": 1}])).replace(b'"n":1', b'"n":123456789012345678901234567890'), "malformed JSON"),
    (orjson.dumps(envelope([{"s": "x"}])).replace(b'"x"', b'"\xff"'), "malformed JSON"),  # not UTF-8
    (b"", "malformed JSON"),
])
def test_a_body_that_is_not_a_well_formed_envelope_is_a_400_naming_why(body, says):
    problem = refused(caliper.split, body)
    assert problem.status == 400 and says in problem.detail, problem.detail


@pytest.mark.parametrize("version", [caliper.V1P2 + "/", caliper.V1P2.replace("http:", "https:"),
                                     "http://purl.imsglobal.org/ctx/caliper/v2", ""])
def test_an_unsupported_data_version_is_a_422_listing_the_supported_ones(version):
    problem = refused(split, envelope([timeback_time_spent()], version=version))
    assert problem.status == 422 and problem.extra["supportedVersions"] == [caliper.V1P2, caliper.V1P1]
    assert problem.document()["status"] == 422 and problem.document()["title"].startswith("Unprocessable")


# ---- submissions, masteries, courses ---------------------------------------------------


def test_submissions_one_or_an_array_are_keyed_by_learner_and_sent_as_written():
    one = submission("AttemptStarted", "u1", "ex1", 0)["value"]
    body = orjson.dumps(one)
    [record] = inputs.submissions(body)
    assert (record.topic, record.key, record.value) == ("learning.submissions.v1", b"u1", body)
    many = [one, submission("AnswerSubmitted", "u2", "ex1", 1, questionId="q1", correct=True)["value"]]
    records = inputs.submissions(orjson.dumps(many))
    assert [(r.key, orjson.loads(r.value)) for r in records] == [(b"u1", many[0]), (b"u2", many[1])]


def test_an_invalid_submission_is_a_422_with_every_reason_and_nothing_is_sent():
    good = submission("AttemptStarted", "u1", "ex1", 0)["value"]
    bad = submission("AnswerSubmitted", "u2", "ex1", 1, questionId="q1")["value"]  # no `correct`
    problem = refused(inputs.submissions, orjson.dumps([good, bad, {"type": "Nope"}]))
    assert problem.status == 422
    assert problem.extra["errors"][0].startswith("[1].AnswerSubmitted.correct")
    assert any(e.startswith("[2].") for e in problem.extra["errors"])
    assert refused(inputs.submissions, b"[]").status == 400
    assert refused(inputs.masteries, b"{").status == 400


def test_a_course_must_name_the_course_of_its_path():
    course = {"type": "CourseUpserted", "courseSourcedId": "c1", "units": []}
    record = inputs.course(orjson.dumps(course), "c1")
    assert (record.topic, record.key) == ("learning.curriculum.v1", b"c1")
    assert refused(inputs.course, orjson.dumps(course), "c2").status == 422
    assert refused(inputs.course, b"[]", "c1").status == 400
    assert inputs.course_deleted("c1").value is None


# ---- tokens and settings --------------------------------------------------------------


def test_tokens_grant_what_they_may_and_never_show_themselves():
    file_text = orjson.dumps({"t-sensor-0123456789abcdef0123456789": {"name": "reader-app", "may": ["caliper"], "sensor": SENSOR},
                              "t-curr-0123456789abcdef0123456789": {"may": ["curriculum"]}}).decode()
    tokens = parse_tokens("all-1-0123456789abcdef0123456789, all-2-0123456789abcdef0123456789", file_text)
    assert tokens.grant("all-2-0123456789abcdef0123456789").kinds == {"caliper", "submissions", "masteries", "curriculum"}
    reader = tokens.grant("t-sensor-0123456789abcdef0123456789")
    assert (reader.name, reader.kinds, reader.sensor) == ("reader-app", {"caliper"}, SENSOR)
    assert tokens.grant("t-curr-0123456789abcdef0123456789").kinds == {"curriculum"} and tokens.grant("t-curr-0123456789abcdef0123456789").sensor is None
    assert tokens.grant("all-") is None and tokens.grant("") is None
    assert "all-1" not in repr(tokens) and "t-sensor-0123456789abcdef0123456789" not in repr(reader)


@pytest.mark.parametrize(("plain", "file_text", "says"), [
    ("", '{"t": {"may": ["everything"]}}', "needs \"may\""),
    ("", '{"t": {"may": []}}', "needs \"may\""),
    ("", '["t"]', "a JSON object"),
    ("", "{nope", "not JSON"),
    (f"{'a' * 32},{'a' * 32}", None, "given twice"),
    ("", '{"t": {"may": ["caliper"], "sensor": 3}}', "sensor"),
])
def test_bad_token_configuration_fails_naming_the_problem_not_the_token(plain, file_text, says):
    with pytest.raises(ConfigError, match=says) as caught:
        parse_tokens(plain, file_text)
    assert "secret" not in str(caught.value)


def test_gateway_settings_need_tokens_and_a_buffer_that_fits_a_request(tmp_path):
    with pytest.raises(ConfigError, match="XPBANK_GATEWAY_TOKENS"):
        GatewaySettings.from_env({})
    with pytest.raises(ConfigError, match="XPBANK_GATEWAY_BUFFER_BYTES"):
        GatewaySettings.from_env({"XPBANK_GATEWAY_TOKENS": "t" * 32, "XPBANK_GATEWAY_BUFFER_BYTES": "1000"})
    path = tmp_path / "tokens.json"
    path.write_text('{"%s": {"may": ["masteries"]}}' % ("t2" * 16))
    settings = GatewaySettings.from_env({"XPBANK_GATEWAY_TOKENS": "t1" * 16, "XPBANK_GATEWAY_TOKENS_FILE": str(path)})
    assert (settings.port, len(settings.tokens), settings.max_payload_bytes) == (6070, 2, 262144)
    with pytest.raises(ConfigError, match="cannot be read"):
        GatewaySettings.from_env({"XPBANK_GATEWAY_TOKENS_FILE": str(tmp_path / "missing.json")})


# ---- the demo's client: record lines as gateway requests ------------------------------


def test_record_lines_become_the_gateway_requests_that_send_them():
    from xpbank.cli.gateway_client import request_of

    event = timeback_time_spent("u1")
    method, path, body = request_of({"topic": "learning.caliper.v1", "key": "u1", "value": event})
    sent = orjson.loads(body)
    assert (method, path, sent["data"], sent["dataVersion"]) == ("POST", "/caliper/v1p2", [event], caliper.V1P2)
    assert [r.key for r in caliper.split(body).records] == [b"u1"]
    assert request_of({"topic": "learning.caliper.v1", "key": "u1", "raw": "{oops"}) == ("POST", "/caliper/v1p2", b"{oops")
    line = submission("AttemptStarted", "u1", "ex1", 0)
    assert request_of(line) == ("POST", "/v1/submissions", orjson.dumps(line["value"]))
    assert request_of({"topic": "learning.curriculum.v1", "key": "c1", "value": None}) == ("DELETE", "/v1/courses/c1", None)
    assert request_of({"topic": "learning.curriculum.v1", "key": "c1", "value": {"a": 1}})[:2] == ("PUT", "/v1/courses/c1")


def test_a_document_still_referenced_does_not_stop_the_next_body():
    from xpbank.gateway.caliper import _parse

    held = _parse(orjson.dumps(envelope([timeback_time_spent("ann")])))  # e.g. kept by a traceback
    assert [r.key for r in split(envelope([timeback_time_spent("bob")])).records] == [b"bob"]
    assert held["sensor"] == SENSOR


def test_the_gateway_command_refuses_to_start_without_tokens_and_says_which_variable():
    import os

    from tests.conftest import xpbank

    env = {k: v for k, v in os.environ.items() if not k.startswith("XPBANK_GATEWAY_")}
    result = xpbank(env, "gateway", timeout=60)
    assert result.returncode == 2
    assert b"XPBANK_GATEWAY_TOKENS" in result.stderr and b"Traceback" not in result.stderr


# ---- SPEC §2.5 limits and the bound on what a request writes ----------------------------


def test_an_ordinary_envelope_never_meets_the_bound_even_with_one_learner_per_event():
    """The worst ordinary case: events of about 300 bytes, each its own learner (a record
    each, repeating the head), a sensor IRI of 199 characters, the body at its limit."""
    event = {"id": "urn:uuid:8b0a6e2e-8f7e-4a52-9d0c-0a8f1c2b3d4e", "type": "TimeSpentEvent",
             "action": "SpentTime", "eventTime": "2026-11-21T10:00:00.000Z", "object": {"activity": {"id": "https://r.example/r12"}},
             "generated": {"items": [{"type": "active", "value": 30}]}}
    events = [event | {"actor": {"id": f"https://r.example/users/learner-{n:06d}"}} for n in range(1000)]
    doc = envelope(events, sensor="https://sensor.example/" + "s" * 176)
    body = orjson.dumps(doc)
    while len(body) > Rules().max_payload_bytes:
        doc["data"].pop()
        body = orjson.dumps(doc)
    assert 300 <= len(orjson.dumps(events[0])) < 310 and len(doc["sensor"]) == 199
    records = caliper.split(body).records
    assert len(records) == len(doc["data"])
    assert sum(len(r.key) + len(r.value) for r in records) <= caliper.bound(len(body))


def test_the_gateway_checks_limits_before_it_splits_and_the_sensor_first():
    long = "x" * 513
    assert "sensor: longer than XPBANK_MAX_ID_LENGTH=512" in refused(split, envelope([timeback_time_spent()], sensor=long)).detail
    many = refused(split, envelope([{}] * 1001))
    assert (many.status, many.detail.split(";")[0]) == (413, "data: 1001 events, over XPBANK_MAX_EVENTS_PER_ENVELOPE=1000")
    bad = refused(split, envelope([timeback_time_spent("u1"), timeback_time_spent("u2") | {"id": "e\x00"}]))
    assert (bad.status, bad.detail) == (422, "data[1].id: holds a control character (U+0000 at 1); ids may not hold "
                                              "U+0000-U+001F or U+007F")
    amplified = refused(split, envelope([{}] * 1000, sensor="https://s.example/" + "s" * 450))
    assert amplified.status == 413 and "over twice its body plus 64 KiB" in amplified.detail
    assert len(caliper.split(orjson.dumps(envelope([{}] * 60, sensor="https://s.example/"))).records) == 60


@pytest.mark.parametrize("event", [
    {"id": "x" * 513}, {"actor": {"id": "a\x1f"}}, {"object": {"activity": {"id": "v" * 600}}},
    {"object": {"course": {"id": "c\x7f"}, "activity": "v"}}, {"actor": "https://x/" + "u" * 600},
    {"actor": {"id": 5}}, {"object": [1]}, {},
])
def test_the_gateways_lazy_id_check_words_a_breach_as_the_workers_does(event):
    from xpbank.contract.identifiers import caliper_id_problem

    lazy = caliper._parse(orjson.dumps(event))
    assert caliper.event_id_problem(lazy, 512) == caliper_id_problem(event, 512)


@given(st.text(max_size=40), st.text(max_size=40), st.integers(8, 30), st.booleans())
def test_the_cheap_look_at_a_body_never_misses_an_id_that_breaks_a_limit(actor, activity, limit, pretty):
    from xpbank.contract.identifiers import caliper_id_problem

    event = {"id": "e1", "actor": {"id": actor}, "object": {"activity": {"id": activity}}}
    body = orjson.dumps(envelope([event]), option=orjson.OPT_INDENT_2 if pretty else 0)
    if caliper_id_problem(event, limit) is not None:
        assert caliper.may_break_limits(body, limit)
