"""Input models (SPEC §2) and output models (SPEC §3.2, §3.5, §3.6)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import orjson
import pytest
from pydantic import TypeAdapter, ValidationError

from xpbank.contract import events as ev
from xpbank.contract import outputs as out

UID = "urn:uuid:6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b"
ONEROSTER = "https://api.timeback.example/ims/oneroster/rostering/v1p2"
SUBMISSION = TypeAdapter(ev.Submission)


def item(type_="active", value=30, **extra):
    return {"type": type_, "value": value, **extra}


def tse(**over):
    doc = {
        "id": UID, "type": "TimeSpentEvent", "action": "SpentTime",
        "actor": {"id": f"{ONEROSTER}/users/u1", "type": "TimebackUser", "email": "a@b.org"},
        "object": {"id": "https://app.example/activity/1", "type": "TimebackActivityContext",
                   "activity": {"id": "https://app.example/resources/v1", "name": "Video 1"},
                   "course": {"id": f"{ONEROSTER}/courses/c1"}, "subject": "Math", "app": {"name": "x"}},
        "eventTime": "2026-11-21T10:00:05.250Z",
        "generated": {"id": "urn:uuid:0a0a0a0a-0000-4000-8000-000000000001", "type": "TimeSpentMetricsResult",
                      "items": [item()]},
    }
    doc.update(over)
    return doc


def submission(type_, **over):
    doc = {"id": UID, "type": type_, "userSourcedId": "u1", "exerciseSourcedId": "ex1",
           "courseSourcedId": "c1", "eventTime": "2026-11-21T10:00:00Z"}
    if type_ in ("AnswerSubmitted", "QuestionSkipped", "QuestionReported"):
        doc["questionId"] = "q3"
    if type_ == "AnswerSubmitted":
        doc["correct"] = True
    doc.update(over)
    return doc


def course(**over):
    doc = {"type": "CourseUpserted", "courseSourcedId": "c1", "subject": "Math", "units": [
        {"sourcedId": "unit1", "sortOrder": 1, "lessons": [{"sourcedId": "l1", "sortOrder": 1, "resources": [
            {"sourcedId": "v1", "sortOrder": 1, "kind": "Video", "xp": 5, "type": "interactive"},
            {"sourcedId": "a1", "sortOrder": 2, "kind": "Article", "xp": 1},
            {"sourcedId": "ex1", "sortOrder": 3, "kind": "Exercise", "xp": 2}]}]}]}
    doc.update(over)
    return doc


def mastery(**over):
    return {"id": UID, "type": "ExerciseMastered", "userSourcedId": "u1", "exerciseSourcedId": "ex1",
            "courseSourcedId": "c1", "attempt": 1, "accuracy": 100.0, "exerciseXp": 3,
            "email": "a@b.org", "eventTime": "2026-11-21T10:00:00Z"} | over


# ---- Caliper TimeSpentEvent ------------------------------------------------------


def test_timeback_envelope_with_several_events_and_anchored_items():
    second = tse(id="urn:uuid:6f1c2a9e-3b4d-4e5f-8a7b-000000000002", actor={"id": "u2"},
                 object={"activity": {"id": "a1"}}, eventTime="2026-11-21T11:00:00+01:00",
                 generated={"items": [
                     item(value=12.5, startDate="2026-11-21T09:59:50Z", endDate="2026-11-21T10:00:03Z"),
                     item("inactive", 40, startDate="2026-11-21T09:59:00Z", endDate="2026-11-21T09:59:40Z"),
                     item("waste", 0)]})
    envelope = ev.CaliperEnvelope.model_validate(
        {"sensor": "https://app.example", "sendTime": "2026-11-21T10:00:06Z", "dataVersion":
         "http://purl.imsglobal.org/ctx/caliper/v1p2", "data": [tse(), second]})
    first, other = (ev.TimeSpentEvent.model_validate(d) for d in envelope.data)
    assert len(envelope.data) == 2 and envelope.sendTime == datetime(2026, 11, 21, 10, 0, 6, tzinfo=UTC)
    assert (first.user, first.resource, first.course, first.actor.email, first.object.subject) == (
        "u1", "v1", "c1", "a@b.org", "Math")
    assert (other.user, other.resource, other.course) == ("u2", "a1", None)
    assert other.eventTime == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    assert [(i.type, i.value, i.startDate, i.endDate) for i in other.generated.items] == [
        ("active", 12.5, datetime(2026, 11, 21, 9, 59, 50, tzinfo=UTC), datetime(2026, 11, 21, 10, 0, 3, tzinfo=UTC)),
        ("inactive", 40, datetime(2026, 11, 21, 9, 59, tzinfo=UTC), datetime(2026, 11, 21, 9, 59, 40, tzinfo=UTC)),
        ("waste", 0, None, None)]


@pytest.mark.parametrize("actor_id", [f"{ONEROSTER}/users/u1", f"{ONEROSTER}/users/u1/", "u1"])
def test_actor_id_url_or_bare_names_the_user(actor_id):
    assert ev.TimeSpentEvent.model_validate(tse(actor={"id": actor_id})).user == "u1"


@pytest.mark.parametrize("activity_id", ["https://app.example/resources/v1", "v1"])
def test_activity_id_url_or_bare_names_the_resource(activity_id):
    event = ev.TimeSpentEvent.model_validate(tse(object={"activity": {"id": activity_id}}))
    assert event.resource == "v1" and event.course is None


def invalid_tse():
    def with_item(**i):
        return tse(generated={"items": [item(**i)]})
    return {
        "naive eventTime": tse(eventTime="2026-11-21T10:00:05"),
        "date-only eventTime": tse(eventTime="2026-11-21"),
        "numeric eventTime": tse(eventTime=1795000000),
        "negative value": with_item(value=-0.001),
        "NaN value": with_item(value=float("nan")),
        "infinite value": with_item(value=float("inf")),
        "string value": with_item(value="30"),
        "bool value": with_item(value=True),
        "naive startDate": with_item(startDate="2026-11-21T10:00:00", endDate="2026-11-21T10:00:30Z"),
        "wrong action": tse(action="NavigatedTo"),
        "missing action": {k: v for k, v in tse().items() if k != "action"},
        "id not urn:uuid": tse(id="6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b"),
        "id urn:uuid garbage": tse(id="urn:uuid:not-a-uuid"),
        "missing actor.id": tse(actor={"email": "a@b.org"}),
        "missing activity": tse(object={"course": {"id": "c1"}}),
        "empty activity id": tse(object={"activity": {"id": ""}}),
        "missing eventTime": {k: v for k, v in tse().items() if k != "eventTime"},
    }


@pytest.mark.parametrize("doc", invalid_tse().values(), ids=list(invalid_tse()))
def test_invalid_time_spent_events_are_rejected(doc):
    with pytest.raises(ValidationError):
        ev.TimeSpentEvent.model_validate(doc)


# ---- submissions -----------------------------------------------------------------

SUBMISSION_TYPES = {cls.__name__: cls for cls in (ev.AttemptStarted, ev.AnswerSubmitted, ev.QuestionSkipped,
                                                  ev.QuestionReported, ev.AttemptFinalized, ev.AttemptReset)}


@pytest.mark.parametrize("type_", SUBMISSION_TYPES)
def test_each_submission_type_with_required_fields(type_):
    parsed = SUBMISSION.validate_python(submission(type_))
    assert type(parsed) is SUBMISSION_TYPES[type_]
    assert (parsed.userSourcedId, parsed.exerciseSourcedId, parsed.courseSourcedId) == ("u1", "ex1", "c1")
    assert parsed.attempt is None and parsed.email is None
    full = SUBMISSION.validate_python(submission(type_, attempt=2, email="a@b.org", totalQuestions=5))
    assert full.attempt == 2 and full.email == "a@b.org"
    if type_ == "AnswerSubmitted":
        assert (full.questionId, full.correct) == ("q3", True)


REQUIRED = [(t, f) for t in SUBMISSION_TYPES
            for f in ("id", "type", "userSourcedId", "exerciseSourcedId", "courseSourcedId", "eventTime")]
REQUIRED += [("AnswerSubmitted", "questionId"), ("QuestionSkipped", "questionId"),
             ("QuestionReported", "questionId"), ("AnswerSubmitted", "correct")]


@pytest.mark.parametrize(("type_", "field"), REQUIRED)
def test_submission_required_fields(type_, field):
    doc = submission(type_)
    del doc[field]
    with pytest.raises(ValidationError):
        SUBMISSION.validate_python(doc)


@pytest.mark.parametrize("doc", [submission("AttemptAbandoned"), submission("AnswerSubmitted", correct="yes"),
                                 submission("AttemptStarted", eventTime="2026-11-21T10:00:00"),
                                 submission("AttemptStarted", userSourcedId="")])
def test_invalid_submissions_are_rejected(doc):
    with pytest.raises(ValidationError):
        SUBMISSION.validate_python(doc)


# ---- mastery and curriculum --------------------------------------------------------


def test_exercise_mastered():
    parsed = ev.ExerciseMastered.model_validate(mastery())
    assert (parsed.attempt, parsed.accuracy, parsed.exerciseXp, parsed.email) == (1, 100.0, 3, "a@b.org")
    for bad in (mastery(type="AttemptFinalized"), mastery(eventTime="2026-11-21T10:00:00"), mastery(attempt=0)):
        with pytest.raises(ValidationError):
            ev.ExerciseMastered.model_validate(bad)


def test_course_upserted_spec_example():
    parsed = ev.CourseUpserted.model_validate(course())
    resources = parsed.units[0].lessons[0].resources
    assert [(r.sourcedId, r.kind, r.xp, r.type) for r in resources] == [
        ("v1", "Video", 5, "interactive"), ("a1", "Article", 1, None), ("ex1", "Exercise", 2, None)]
    assert parsed.subject == "Math"


@pytest.mark.parametrize("kind", ["Article", "Video", "Exercise", "Quiz", "UnitTest", "CourseChallenge", "Podcast", "video"])
def test_curriculum_kinds(kind):
    doc = course(units=[{"sourcedId": "u", "sortOrder": 1, "lessons": [{"sourcedId": "l", "sortOrder": 1,
                 "resources": [{"sourcedId": "r", "sortOrder": 1, "kind": kind}]}]}])
    if kind in ("Podcast", "video"):
        with pytest.raises(ValidationError):
            ev.CourseUpserted.model_validate(doc)
    else:
        assert ev.CourseUpserted.model_validate(doc).units[0].lessons[0].resources[0].xp is None


# ---- outputs -----------------------------------------------------------------------

T_PLUS2 = "2026-11-21T12:00:05.250+02:00"
COMMON = {"id": UID, "generation": 1, "userSourcedId": "u1", "exerciseSourcedId": "ex1", "courseSourcedId": "c1",
          "attempt": 1, "sourceEventId": UID, "eventTime": T_PLUS2}
OUTPUTS = {
    "AttemptOpened": (out.AttemptOpened, {**COMMON, "totalQuestions": 5}),
    "AttemptCompleted": (out.AttemptCompleted, {**COMMON, "correct": 4, "total": 5, "accuracy": 80.0,
                                                 "exerciseXp": 2, "mastered": True}),
    "AttemptDiscarded": (out.AttemptDiscarded, {**COMMON, "answered": 3}),
    "BankedXpAwarded": (out.BankedXpAwarded, {
        "id": UID, "awardId": "bank:u1:v1", "generation": 1, "revision": 1, "userSourcedId": "u1", "email": None,
        "courseSourcedId": "c1", "resourceSourcedId": "v1", "resourceKind": "Video", "exerciseSourcedId": "ex1",
        "attempt": 1, "masteryEventId": UID, "activeSeconds": 120.0, "minutes": 2, "expectedXp": 5, "xp": 2,
        "deltaXp": 2, "eventTime": T_PLUS2}),
    "XpFact": (out.XpFact, {
        "factId": "bank:u1:v1", "kind": "banked", "generation": 1, "revision": 1, "userSourcedId": "u1",
        "email": "a@b.org", "date": "2026-11-21", "courseSourcedId": "c1", "subject": "Math",
        "resourceSourcedId": "v1", "exerciseSourcedId": "ex1", "attempt": 1, "xp": 2, "eventTime": T_PLUS2,
        "sources": [UID]}),
    "DeadLetter": (out.DeadLetter, {
        "reason": "too_late", "detail": "d", "topic": "learning.caliper.v1", "partition": None, "offset": 3,
        "key": "u1", "timestamp": T_PLUS2, "eventId": UID, "payload": "{}"}),
}
TIME_FIELD = {"DeadLetter": "timestamp"}


@pytest.mark.parametrize("name", OUTPUTS)
def test_output_times_serialize_as_utc_z(name):
    model, doc = OUTPUTS[name]
    parsed = model.model_validate(doc)
    field = TIME_FIELD.get(name, "eventTime")
    assert parsed.model_dump(mode="json")[field] == "2026-11-21T10:00:05.250Z"
    assert orjson.loads(parsed.model_dump_json())[field] == "2026-11-21T10:00:05.250Z"


def test_output_time_keeps_microseconds_and_fact_date():
    model, doc = OUTPUTS["XpFact"]
    fact = model.model_validate({**doc, "eventTime": datetime(2026, 11, 21, 23, 59, 59, 123456, tzinfo=UTC)})
    dumped = fact.model_dump(mode="json")
    assert dumped["eventTime"] == "2026-11-21T23:59:59.123456Z"
    assert dumped["date"] == "2026-11-21" and fact.date == date(2026, 11, 21)
    assert dumped["sources"] == [UID]


@pytest.mark.parametrize("name", OUTPUTS)
def test_outputs_are_frozen_and_closed(name):
    model, doc = OUTPUTS[name]
    parsed = model.model_validate(doc)
    with pytest.raises(ValidationError, match="frozen"):
        setattr(parsed, next(iter(model.model_fields)), "changed")
    with pytest.raises(ValidationError):
        model.model_validate({**doc, "unexpected": 1})


@pytest.mark.parametrize(("model", "doc", "field"), [
    (ev.TimeSpentEvent, tse(), "eventTime"), (ev.AnswerSubmitted, submission("AnswerSubmitted"), "correct"),
    (ev.ExerciseMastered, mastery(), "exerciseXp"), (ev.CourseUpserted, course(), "subject")])
def test_input_models_are_frozen(model, doc, field):
    parsed = model.model_validate(doc)
    with pytest.raises(ValidationError, match="frozen"):
        setattr(parsed, field, None)


def test_output_literals_and_dead_letter_fields_match_spec():
    assert set(out.REASONS) == {"malformed_json", "schema_violation", "payload_too_large", "future_event_time",
                                "too_late", "stale_attempt", "unknown_course", "unknown_exercise"}
    assert set(out.DeadLetter.model_fields) == {"reason", "detail", "topic", "partition", "offset", "key",
                                                "timestamp", "eventId", "payload", "payloadEncoding"}
    model, doc = OUTPUTS["DeadLetter"]
    assert model.model_validate(doc).payloadEncoding == "utf-8"
    assert model.model_validate({**doc, "payloadEncoding": "base64"}).payloadEncoding == "base64"
    for bad in ({"reason": "duplicate"}, {"payloadEncoding": "hex"}):
        with pytest.raises(ValidationError):
            model.model_validate({**doc, **bad})
    model, doc = OUTPUTS["XpFact"]
    assert model.model_validate({**doc, "kind": "exercise"}).kind == "exercise"
    with pytest.raises(ValidationError):
        model.model_validate({**doc, "kind": "bonus"})


@pytest.mark.parametrize(("model", "spec_fields"), [
    (out.AttemptCompleted, "id type userSourcedId exerciseSourcedId courseSourcedId attempt correct total accuracy "
                           "exerciseXp mastered eventTime"),
    (out.BankedXpAwarded, "id type awardId generation revision userSourcedId email courseSourcedId resourceSourcedId "
                          "resourceKind exerciseSourcedId attempt masteryEventId activeSeconds minutes expectedXp xp "
                          "deltaXp eventTime"),
    (out.XpFact, "factId kind generation revision userSourcedId email date courseSourcedId subject "
                 "resourceSourcedId exerciseSourcedId attempt xp eventTime sources")])
def test_output_models_carry_every_spec_field(model, spec_fields):
    assert set(spec_fields.split()) <= set(model.model_fields)

