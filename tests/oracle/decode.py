"""The stateless checks of SPEC §3.6, in its order: size, JSON, schema (§2, with the
identifier limits of §2.5), future_event_time. Each input record becomes a list of
plain events, `Refused` events (a dead letter's reason and event id) or `Ignored`
Caliper events of another type. Written from the SPEC text, field by field."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import ROUND_FLOOR, Decimal

import orjson

from tests.oracle.events import CourseDelete, CourseUpsert, Ignored, Mastery, Refused, Submission, TimeSpent
from tests.oracle.fields import (
    Limits, Violation, a_dict, a_list, a_number, a_string, a_time, an_id, an_int, an_optional_string, id_problem,
    last_segment, need, readable_id,
)
from tests.oracle.records import CALIPER, CURRICULUM, MASTERY, SUBMISSIONS, Record

URN_UUID = re.compile(r"urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
SUBMISSION_TYPES = ("AttemptStarted", "AnswerSubmitted", "QuestionSkipped", "QuestionReported", "AttemptFinalized",
                    "AttemptReset")
QUESTION_TYPES = ("AnswerSubmitted", "QuestionSkipped", "QuestionReported")
RESOURCE_KINDS = ("Article", "Video", "Exercise", "Quiz", "UnitTest", "CourseChallenge")


# ---- §2.1 Caliper TimeSpentEvent --------------------------------------------------------


def credited_ms(items: list[dict], limits: Limits) -> int:
    """§2.1: the sum of `value` over `active` items, each at most its window plus 1 s
    (both dates given) or max_unanchored_seconds; in integer milliseconds, rounding
    half up the decimal number the JSON wrote (docs/decisions.md: floor(value*1000 + 0.5))."""
    total = 0
    for item in items:
        if item["type"] != "active":
            continue
        claimed = int((Decimal(str(item["value"])) * 1000 + Decimal("0.5")).to_integral_value(ROUND_FLOOR))
        if item["startDate"] is not None and item["endDate"] is not None:
            window_us = (item["endDate"] - item["startDate"]) // timedelta(microseconds=1)
            cap = window_us // 1000 + 1000
        else:
            cap = limits.max_unanchored_seconds * 1000
        total += min(claimed, cap)
    return total


def time_spent_item(value) -> dict:
    item = a_dict(value)
    checked = {
        "type": a_string(need(item, "type")),
        "value": a_number(need(item, "value"), minimum=0),
        "startDate": None if item.get("startDate") is None else a_time(item["startDate"]),
        "endDate": None if item.get("endDate") is None else a_time(item["endDate"]),
    }
    if checked["startDate"] and checked["endDate"] and checked["endDate"] < checked["startDate"]:
        raise Violation("endDate is before startDate")  # docs/decisions.md
    return checked


def time_spent(doc: dict, limits: Limits) -> TimeSpent:
    if not isinstance(doc.get("id"), str) or not URN_UUID.fullmatch(doc["id"]):
        raise Violation("id must be urn:uuid:<uuid>")
    an_id(doc["id"], limits)
    if need(doc, "type") != "TimeSpentEvent" or need(doc, "action") != "SpentTime":
        raise Violation("a TimeSpentEvent with action SpentTime is required")
    actor = a_dict(need(doc, "actor"))
    user = last_segment(an_id(need(actor, "id"), limits))
    an_optional_string(actor.get("email"))
    context = a_dict(need(doc, "object"))
    resource = last_segment(an_id(need(a_dict(need(context, "activity")), "id"), limits))
    if context.get("course") is not None:
        an_id(need(a_dict(context["course"]), "id"), limits)
    an_optional_string(context.get("subject"))
    event_time = a_time(need(doc, "eventTime"))
    items = [time_spent_item(item) for item in a_list(a_dict(need(doc, "generated")).get("items", []))]
    return TimeSpent(doc["id"], user, resource, event_time, credited_ms(items, limits))


def caliper_ids_problem(doc: dict, limits: Limits) -> bool:
    """§2.5 for an event of any Caliper type (docs/decisions.md): its id, actor.id,
    object.activity.id and object.course.id, where they are strings."""
    paths = (("id",), ("actor", "id"), ("object", "activity", "id"), ("object", "course", "id"))
    for path in paths:
        value = doc
        for name in path:
            value = value.get(name) if isinstance(value, dict) else None
        if isinstance(value, str) and id_problem(value, limits):
            return True
    return False


def caliper_event(doc, limits: Limits) -> TimeSpent | Ignored | Refused:
    """§2.1: a string `type` other than TimeSpentEvent is ignored; anything else must be
    a valid TimeSpentEvent."""
    if isinstance(doc, dict) and caliper_ids_problem(doc, limits):
        return Refused("schema_violation", readable_id(doc, limits))
    if isinstance(doc, dict) and isinstance(doc.get("type"), str) and doc["type"] != "TimeSpentEvent":
        return Ignored(doc["type"])
    try:
        return time_spent(a_dict(doc), limits)
    except Violation:
        return Refused("schema_violation", readable_id(doc, limits))


def caliper(doc, limits: Limits) -> list:
    """A single event, or an envelope {sensor, sendTime, dataVersion, data} whose events
    are each handled on their own (§2.1); an envelope that is itself wrong, or carries
    more than max_events_per_envelope events or an over-long sensor (§2.5), is one
    schema_violation."""
    if not (isinstance(doc, dict) and "data" in doc and "type" not in doc):
        return [caliper_event(doc, limits)]
    try:
        if doc.get("sensor") is not None:
            an_id(doc["sensor"], limits, nonempty=False)
        if doc.get("sendTime") is not None:
            a_time(doc["sendTime"])
        an_optional_string(doc.get("dataVersion"))
        data = a_list(doc["data"])
    except Violation:
        return [Refused("schema_violation")]
    if limits.identifier_rules and len(data) > limits.max_events_per_envelope:
        return [Refused("schema_violation")]
    return [caliper_event(event, limits) for event in data]


# ---- §2.2 submissions, §2.3 masteries, §2.4 curriculum ---------------------------------


def submission(doc, limits: Limits) -> Submission:
    doc = a_dict(doc)
    kind = need(doc, "type")
    if kind not in SUBMISSION_TYPES:
        raise Violation("type is not a submission type")
    question = an_id(need(doc, "questionId"), limits) if kind in QUESTION_TYPES else None
    correct = need(doc, "correct") if kind == "AnswerSubmitted" else None
    if kind == "AnswerSubmitted" and not isinstance(correct, bool):
        raise Violation("correct must be a boolean")
    total = doc.get("totalQuestions") if kind in ("AttemptStarted", "AttemptFinalized") else None
    return Submission(
        type=kind,
        id=an_id(need(doc, "id"), limits),
        user=an_id(need(doc, "userSourcedId"), limits),
        exercise=an_id(need(doc, "exerciseSourcedId"), limits),
        course=an_id(need(doc, "courseSourcedId"), limits),
        event_time=a_time(need(doc, "eventTime")),
        attempt=None if doc.get("attempt") is None else an_int(doc["attempt"], 1),
        question=question,
        correct=correct,
        total_questions=None if total is None else an_int(total, 0),
        email=an_optional_string(doc.get("email")),
    )


def mastery(doc, limits: Limits) -> Mastery:
    doc = a_dict(doc)
    if doc.get("type", "ExerciseMastered") != "ExerciseMastered":
        raise Violation("type must be ExerciseMastered")
    return Mastery(
        id=an_id(need(doc, "id"), limits),
        user=an_id(need(doc, "userSourcedId"), limits),
        exercise=an_id(need(doc, "exerciseSourcedId"), limits),
        course=an_id(need(doc, "courseSourcedId"), limits),
        attempt=an_int(need(doc, "attempt"), 1),
        accuracy=a_number(need(doc, "accuracy"), minimum=0),
        exercise_xp=an_int(need(doc, "exerciseXp"), 0),
        email=an_optional_string(doc.get("email")),
        event_time=a_time(need(doc, "eventTime")),
    )


def sorted_node(doc, limits: Limits, children: str | None) -> dict:
    """A unit, lesson or resource: a sourcedId and a sortOrder (a finite number)."""
    doc = a_dict(doc)
    an_id(need(doc, "sourcedId"), limits)
    a_number(need(doc, "sortOrder"))
    if children is not None:
        a_list(doc.get(children, []))
    return doc


def course_upsert(doc, limits: Limits) -> CourseUpsert:
    doc = a_dict(doc)
    if need(doc, "type") != "CourseUpserted":
        raise Violation("type must be CourseUpserted")
    course = an_id(need(doc, "courseSourcedId"), limits)
    subject = an_optional_string(doc.get("subject"))
    for unit in a_list(doc.get("units", [])):
        for lesson in sorted_node(unit, limits, "lessons").get("lessons", []):
            for resource in sorted_node(lesson, limits, "resources").get("resources", []):
                sorted_node(resource, limits, None)
                if resource.get("kind") not in RESOURCE_KINDS:
                    raise Violation("kind is not a resource kind")
                if resource.get("xp") is not None:
                    an_int(resource["xp"], 0)
                an_optional_string(resource.get("type"))
    return CourseUpsert(course, subject, doc.get("units", []))


# ---- one record ----------------------------------------------------------------------


def decode(record: Record, limits: Limits) -> list:
    """§3.6's stateless checks, in order, for one record."""
    if record.value is None:  # §2.4: a tombstone deletes the course named by the key
        if record.topic == CURRICULUM and record.key and not id_problem(record.key, limits):
            return [CourseDelete(record.key)]
        return [Refused("schema_violation")]
    if len(record.value) > limits.max_payload_bytes:
        return [Refused("payload_too_large")]
    try:
        doc = orjson.loads(record.value)  # the contract's JSON (docs/decisions.md §8)
    except orjson.JSONDecodeError:
        return [Refused("malformed_json")]
    if record.topic == CALIPER:
        return [in_time(event, record, limits) for event in caliper(doc, limits)]
    parse = {SUBMISSIONS: submission, MASTERY: mastery, CURRICULUM: course_upsert}[record.topic]
    try:
        return [in_time(parse(doc, limits), record, limits)]
    except Violation:
        return [Refused("schema_violation", readable_id(doc, limits))]


def in_time(event, record: Record, limits: Limits):
    """§3.6 future_event_time: an eventTime more than max_clock_skew_seconds after the
    record timestamp."""
    when = getattr(event, "event_time", None)
    if when is not None and record.timestamp is not None:
        if when - record.timestamp > timedelta(seconds=limits.max_clock_skew_seconds):
            return Refused("future_event_time", event.id)
    return event
