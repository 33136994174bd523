"""Builders for record lines as producers would send them, and a runner over simulate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from xpbank.core.rules import Rules
from xpbank.cli.records import read_lines
from xpbank.processing.simulate import Simulator, current_facts

# Records are dated relative to now: a broker deletes by time, so a fixed date would
# make every test that reaches it fail once the calendar passes the retention. The suite
# runs longer than the development broker's retention (an hour), so tests/conftest.py
# moves BASE to `base_now()` before each test.


def base_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)


BASE = base_now()


def at(seconds: float) -> str:
    """An ISO time `seconds` after BASE."""
    moment = BASE + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def eid(*parts: object) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_OID, ':'.join(map(str, parts)))}"


def line(topic: str, key: str | None, value: Any, timestamp: str | None = None) -> dict:
    doc = {"topic": topic, "key": key, "value": value}
    if timestamp:
        doc["timestamp"] = timestamp
    return doc


def resource(rid: str, order: float, kind: str, xp: int | None = None, interactive: bool = True) -> dict:
    doc: dict[str, Any] = {"sourcedId": rid, "sortOrder": order, "kind": kind}
    if xp is not None:
        doc["xp"] = xp
    if interactive and kind in ("Article", "Video"):
        doc["type"] = "interactive"
    return doc


def course(cid: str, lessons: list[list[dict]], subject: str = "Math", unit: str = "unit1") -> dict:
    """One unit whose lessons are given in order, each a list of resources."""
    value = {
        "type": "CourseUpserted",
        "courseSourcedId": cid,
        "subject": subject,
        "units": [
            {
                "sourcedId": unit,
                "sortOrder": 1,
                "lessons": [
                    {"sourcedId": f"{unit}-l{i}", "sortOrder": i, "resources": res}
                    for i, res in enumerate(lessons, start=1)
                ],
            }
        ],
    }
    return line("learning.curriculum.v1", cid, value, at(-60))


def time_spent_event(user: str, rid: str, seconds: float, t: float, *, event_id: str | None = None,
                     anchored: bool = True, course_id: str | None = "c1") -> dict:
    item: dict[str, Any] = {"type": "active", "value": seconds}
    if anchored:
        item["startDate"], item["endDate"] = at(t - seconds), at(t)
    event = {
        "id": event_id or eid("ts", user, rid, t, seconds),
        "type": "TimeSpentEvent",
        "action": "SpentTime",
        "actor": {"id": f"https://roster.example.org/ims/oneroster/rostering/v1p2/users/{user}", "email": f"{user}@example.org"},
        "object": {"activity": {"id": f"https://roster.example.org/resources/{rid}"}, "subject": "Math"},
        "eventTime": at(t),
        "generated": {"items": [item]},
    }
    if course_id:
        event["object"]["course"] = {"id": course_id}
    return event


def heartbeat(user: str, rid: str, seconds: float, t: float, **kw: Any) -> dict:
    return line("learning.caliper.v1", user, time_spent_event(user, rid, seconds, t, **kw), at(t))


def envelope(user: str, events: list[dict], t: float) -> dict:
    value = {"sensor": "https://app.example.org", "sendTime": at(t), "dataVersion": "http://purl.imsglobal.org/ctx/caliper/v1p2", "data": events}
    return line("learning.caliper.v1", user, value, at(t))


def submission(kind: str, user: str, exercise: str, t: float, *, sid: str | None = None,
               course_id: str = "c1", **fields: Any) -> dict:
    value = {
        "id": sid or eid("sub", kind, user, exercise, t, sorted(fields.items())),
        "type": kind,
        "userSourcedId": user,
        "exerciseSourcedId": exercise,
        "courseSourcedId": course_id,
        "eventTime": at(t),
        **fields,
    }
    return line("learning.submissions.v1", user, value, at(t))


def attempt(user: str, exercise: str, t: float, answers: list[bool], *, attempt_no: int | None = None,
            total: int | None = None) -> list[dict]:
    """Start, one answer per question, finalize — one second apart."""
    extra = {"attempt": attempt_no} if attempt_no else {}
    lines = [submission("AttemptStarted", user, exercise, t, totalQuestions=total or len(answers), **extra)]
    for i, ok in enumerate(answers):
        lines.append(submission("AnswerSubmitted", user, exercise, t + 1 + i, questionId=f"q{i}", correct=ok, **extra))
    lines.append(submission("AttemptFinalized", user, exercise, t + 1 + len(answers), email=f"{user}@example.org", **extra))
    return lines


def mastery(user: str, exercise: str, t: float, attempt_no: int = 1, course_id: str = "c1", mid: str | None = None) -> dict:
    value = {
        "id": mid or eid("mastery", user, exercise, t), "type": "ExerciseMastered", "userSourcedId": user,
        "exerciseSourcedId": exercise, "courseSourcedId": course_id, "attempt": attempt_no, "accuracy": 100.0,
        "exerciseXp": 2, "eventTime": at(t),
    }
    return line("learning.mastery.v1", user, value, at(t))


def to_bytes(lines: list[dict]) -> list[bytes]:
    return [orjson.dumps(doc) for doc in lines]


def simulate(lines: list[dict], rules: Rules | None = None) -> tuple[list, Simulator]:
    simulator = Simulator(rules or Rules())
    outputs = list(simulator.run(read_lines(to_bytes(lines))))
    return outputs, simulator


def facts_of(lines: list[dict], rules: Rules | None = None) -> dict[str, int]:
    outputs, _ = simulate(lines, rules)
    return {fid: f.xp for fid, f in current_facts(outputs).items()}


def of_type(outputs: list, name: str) -> list:
    return [o.value for o in outputs if type(o.value).__name__ == name]


def dead_letters(outputs: list) -> list[tuple[str, str | None]]:
    return [(d.reason, d.eventId) for d in of_type(outputs, "DeadLetter")]
