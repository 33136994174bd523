"""A corpus of damaged input: valid events (as the bench, the classroom and the seeds
send them) with fields removed, retyped or reformatted, and bytes that JSON parsers
disagree on. Deterministic for a seed; its golden outputs pin every dead-letter detail
the decoding gives, so a faster decoder must give the same ones."""

from __future__ import annotations

import copy
import random
import uuid
from datetime import timedelta
from typing import Any

import orjson

from tests.golden.corpus import FIXED_START
from xpbank.contract.times import format_time
from xpbank.contract.records import InputRecord

ROSTER = "https://roster.example.org/ims/oneroster/rostering/v1p2/users/"
NS = uuid.UUID("0b7d7a8e-1c0e-4a8e-9d6f-5c1a2b3c4d5e")
TIME_FORMS = [
    "{d}T{t}Z", "{d}T{t}.250Z", "{d}T{t}.123456Z", "{d}T{t}.1234567Z", "{d}T{t}+00:00", "{d}T{t}+02:00",
    "{d}T{t}-05:30", "{d}T{t}", "{d} {t}Z", "{d}T{t}z", "{d}", "{d}T{t}.5Z", "{d}T{t},5Z", "{d}T{t}+0000",
    "{dc}T{tc}Z", "{d}T{t}Z ", " {d}T{t}Z", "{d}T24:00:00Z", "{d}T{t}+14:00", "{d}T{t}+23:59:59", "{d}T{hm}Z",
]
ODD_VALUES: list[Any] = [None, "", "x", 0, -1, 1, 1.5, -0.0, True, False, [], {}, [1], {"id": "a"}, 2**64 - 1, 1e300,
                         "urn:uuid:" + "0" * 36, "https://example.org/users/", "/", "a/b/", "\u00e9", "\x00"]
SUB_TYPES = ["AttemptStarted", "AnswerSubmitted", "QuestionSkipped", "QuestionReported", "AttemptFinalized",
             "AttemptReset"]
RAW_DAMAGE = [
    lambda b: b[: len(b) // 2], lambda b: b + b"x", lambda b: b"\xef\xbb\xbf" + b, lambda b: b.replace(b"30", b"NaN", 1),
    lambda b: b.replace(b"30", b"Infinity", 1), lambda b: b.replace(b"30", b"1e400", 1),
    lambda b: b.replace(b"30", b"123456789012345678901234567890", 1), lambda b: b.replace(b"30", b"30.0000000000000001", 1),
    lambda b: b.replace(b'"Math"', b'"\\ud800"', 1), lambda b: b.replace(b'"Math"', b'"\\u004Dath"', 1),
    lambda b: b.replace(b'"Math"', b'"M\xffath"', 1), lambda b: b.replace(b"{", b'{"type":"Other",', 1),
    lambda b: b.replace(b"{", b'{"id":7,', 1), lambda b: b"  " + b + b"\n", lambda b: b.replace(b",", b" , ", 3),
    lambda b: b.replace(b"}", b',"extra":[1,{"deep":null}]}', 1), lambda b: b.replace(b'"id"', b'"\\u0069d"', 1),
    lambda b: b.replace(b"30", b"3e1", 1), lambda b: b.replace(b"30", b"-30", 1), lambda b: b.replace(b"30", b"30E0", 1),
]


def eid(*parts: object) -> str:
    return f"urn:uuid:{uuid.uuid5(NS, ':'.join(map(str, parts)))}"


def at(seconds: float) -> str:
    return format_time(FIXED_START + timedelta(seconds=seconds))


def time_form(rng: random.Random, seconds: float) -> str:
    moment = FIXED_START + timedelta(seconds=seconds)
    return rng.choice(TIME_FORMS).format(
        d=moment.strftime("%Y-%m-%d"), t=moment.strftime("%H:%M:%S"), hm=moment.strftime("%H:%M"),
        dc=moment.strftime("%Y%m%d"), tc=moment.strftime("%H%M%S"))


def heartbeat(user: str, rid: str, t: float, n: int, seconds: float = 30, style: int = 0) -> dict:
    event = {
        "id": eid("ts", user, rid, t, n), "type": "TimeSpentEvent", "action": "SpentTime",
        "actor": {"id": ROSTER + user, "email": f"{user}@example.org"},
        "object": {"activity": {"id": f"https://roster.example.org/resources/{rid}"}, "course": {"id": "c1"},
                   "subject": "Math"},
        "eventTime": at(t),
        "generated": {"items": [{"type": "active", "value": seconds, "startDate": at(t - seconds), "endDate": at(t)}]},
    }
    if style == 1:  # the classroom's Timeback shape: more fields, an inactive item
        event |= {"@context": "http://purl.imsglobal.org/ctx/caliper/v1p2", "profile": "TimebackProfile"}
        event["actor"] |= {"type": "TimebackUser"}
        event["object"] |= {"id": f"https://app.example.org/activities/{rid}", "type": "TimebackActivityContext"}
        event["generated"] |= {"id": event["id"] + "-metrics", "type": "TimebackTimeSpentMetricsCollection"}
        event["generated"]["items"].append({"type": "inactive", "value": 3})
    elif style == 2:  # the minimum: bare ids, no course, an unanchored item
        event = {k: v for k, v in event.items()}
        event["actor"] = {"id": user}
        event["object"] = {"activity": {"id": rid}}
        event["generated"] = {"items": [{"type": "active", "value": seconds}]}
    return event


def envelope(events: list[dict], t: float) -> dict:
    return {"sensor": "https://app.example.org", "sendTime": at(t),
            "dataVersion": "http://purl.imsglobal.org/ctx/caliper/v1p2", "data": events}


def submission(kind: str, user: str, exercise: str, t: float, n: int, **fields: Any) -> dict:
    return {"id": eid("sub", kind, user, exercise, t, n), "type": kind, "userSourcedId": user,
            "exerciseSourcedId": exercise, "courseSourcedId": "c1", "eventTime": at(t), **fields}


def mastery(user: str, exercise: str, t: float, n: int) -> dict:
    return {"id": eid("mastery", user, exercise, t, n), "type": "ExerciseMastered", "userSourcedId": user,
            "exerciseSourcedId": exercise, "courseSourcedId": "c1", "attempt": 1, "accuracy": 100.0,
            "exerciseXp": 2, "eventTime": at(t)}


def course() -> dict:
    lessons = [{"sourcedId": f"l{i}", "sortOrder": i, "resources": [
        {"sourcedId": f"v{i}", "sortOrder": 1, "kind": "Video", "xp": 5, "type": "interactive"},
        {"sourcedId": f"a{i}", "sortOrder": 2, "kind": "Article", "xp": 2},
        {"sourcedId": f"ex{i}", "sortOrder": 3, "kind": "Exercise", "xp": 3}]} for i in range(1, 4)]
    return {"type": "CourseUpserted", "courseSourcedId": "c1", "subject": "Math",
            "units": [{"sourcedId": "u1", "sortOrder": 1, "lessons": lessons}]}


def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside a JSON document."""
    found = []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found.append((*prefix, key))
            found += paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for n, value in enumerate(doc):
            found.append((*prefix, n))
            found += paths(value, (*prefix, n))
    return found


def mutate(rng: random.Random, doc: Any, t: float) -> Any:
    doc = copy.deepcopy(doc)
    where = paths(doc)
    if not where:
        return doc
    path = rng.choice(where)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    name = str(last)
    roll = rng.random()
    if roll < 0.25 and isinstance(parent, dict):
        del parent[last]
    elif roll < 0.45 and name in ("eventTime", "startDate", "endDate", "sendTime"):
        parent[last] = time_form(rng, t + rng.choice([0, -3, -45, 400, 7200, -7200]))
    elif roll < 0.55 and name == "id":
        value = parent[last]
        parent[last] = rng.choice([value.upper() if isinstance(value, str) else value,
                                   (value[:9] + value[9:].upper()) if isinstance(value, str) else value,
                                   (value + "\n") if isinstance(value, str) else value, "urn:uuid:{x}",
                                   str(value)[9:], "URN:UUID:" + str(value)[9:], eid("fresh", t)])
    elif roll < 0.65 and name in ("value", "attempt", "totalQuestions", "accuracy", "exerciseXp", "sortOrder", "xp"):
        parent[last] = rng.choice([0, 1, 2, 30, 30.5, -1, 1e-9, 1e300, 2**63, 2**64 - 1, -(2**63), "30", True, None, 59.9995])
    elif roll < 0.75 and name in ("type", "action", "kind"):
        parent[last] = rng.choice(["TimeSpentEvent", "SpentTime", "active", "inactive", "Active", "NavigationEvent",
                                   "timespentevent", "Paused", "", None, 3, *SUB_TYPES, "ExerciseMastered"])
    else:
        parent[last] = rng.choice(ODD_VALUES)
    return doc


def base_records(rng: random.Random, t: float, n: int) -> list[tuple[str, str, dict]]:
    user = f"u{rng.randint(1, 4)}"
    rid = rng.choice(["v1", "a1", "v2", "a2", "v3", "ex1", "nope"])
    style = rng.choice([0, 0, 1, 2])
    choice = rng.random()
    if choice < 0.4:
        return [("learning.caliper.v1", user, heartbeat(user, rid, t, n, rng.choice([10, 30, 90, 600]), style))]
    if choice < 0.65:
        events = [heartbeat(rng.choice([user, user, "u9"]), rng.choice(["v1", "a1", "v2"]), t - i, n * 100 + i,
                            30, style) for i in range(rng.randint(1, 6))]
        return [("learning.caliper.v1", user, envelope(events, t))]
    if choice < 0.9:
        kind = rng.choice(SUB_TYPES)
        fields: dict[str, Any] = {}
        if kind in ("AnswerSubmitted", "QuestionSkipped", "QuestionReported"):
            fields["questionId"] = f"q{rng.randint(0, 3)}"
        if kind == "AnswerSubmitted":
            fields["correct"] = rng.random() < 0.7
        if kind in ("AttemptStarted", "AttemptFinalized") and rng.random() < 0.5:
            fields["totalQuestions"] = rng.randint(0, 5)
        if rng.random() < 0.3:
            fields["attempt"] = rng.randint(1, 3)
        return [("learning.submissions.v1", user, submission(kind, user, f"ex{rng.randint(1, 3)}", t, n, **fields))]
    return [("learning.mastery.v1", user, mastery(user, f"ex{rng.randint(1, 3)}", t, n))]


def mutated_records(seed: int = 14, count: int = 1500) -> list[InputRecord]:
    rng = random.Random(seed)
    out: list[InputRecord] = []

    def add(topic: str, key: str | None, value: bytes | None, t: float | None) -> None:
        stamp = None if t is None else FIXED_START + timedelta(seconds=t)
        out.append(InputRecord(topic, None if key is None else key.encode(), value, stamp, None, len(out) + 1, topic))

    add("learning.curriculum.v1", "c1", orjson.dumps(course()), 0)
    for n in range(count):
        t = 100 + n * 7
        for topic, key, doc in base_records(rng, t, n):
            roll = rng.random()
            if roll < 0.3:
                value = orjson.dumps(doc)  # valid: builds state for the rules checks
            elif roll < 0.85:
                for _ in range(rng.randint(1, 3)):
                    target = doc["data"][rng.randrange(len(doc["data"]))] if "data" in doc and doc["data"] and rng.random() < 0.8 else doc
                    mutated = mutate(rng, target, t)
                    if target is doc:
                        doc = mutated
                    else:
                        doc["data"][doc["data"].index(target)] = mutated
                value = orjson.dumps(doc)
            else:
                value = rng.choice(RAW_DAMAGE)(orjson.dumps(doc))
            stamp = rng.choice([t, t, t, t - 600, None, t + 5])
            add(topic, rng.choice([key, key, key, "device-1", None]), value, stamp)
    return out
