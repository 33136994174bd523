"""A Caliper envelope (IMS Caliper 1.2 §5.2, §6.1) checked at the edge and split into
one record per learner, as pure functions.

Checks are shallow on purpose: the envelope must be one (400 otherwise), its
`dataVersion` one the gateway speaks (422), within SPEC §2.5's limits (its sensor and every
event's ids: 422; its number of events: 413), and each event is only attributed to a
learner (`last_segment(actor.id)`, SPEC §2.1). The worker still validates every
TimeSpentEvent and dead-letters what is wrong, so nothing is decided twice and nothing is
dropped here. A split never writes more than `bound(body)`: each record repeats the
envelope's head, so many loose events with a long sensor would multiply the body (413).

The body is parsed with simdjson, lazily: the whole document is validated, but only the
envelope's fields and each event's `actor.id` become Python objects (a third of the CPU
of `orjson.loads` for a 100-event envelope, see docs/benchmarks.md). One parser is reused
(a new one costs 15 us): simdjson's proxies point into its buffer, so `split` keeps none
of them, and a parser whose last document is still referenced is replaced."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import orjson
import simdjson

from xpbank.contract.events import last_segment
from xpbank.contract.identifiers import (
    CALIPER_ID_PATHS, MAX_EVENTS_PER_ENVELOPE, MAX_ID_LENGTH, id_problem, too_many_events,
)
from xpbank.contract.times import parse_time
from xpbank.gateway.problems import Refused

V1P2 = "http://purl.imsglobal.org/ctx/caliper/v1p2"
V1P1 = "http://purl.imsglobal.org/ctx/caliper/v1p1"
DATA_VERSIONS = (V1P2, V1P1)
FIELDS = ("sensor", "sendTime", "dataVersion", "data")  # §5.2: each required, no others
ALLOWANCE = 64 * 1024  # bytes a request may write beyond twice its body


def bound(body_size: int) -> int:
    """The most the records of one request may hold (keys and values): 2 x body + 64 KiB."""
    return 2 * body_size + ALLOWANCE


@dataclass(frozen=True)
class Limits:
    max_id_length: int = MAX_ID_LENGTH
    max_events: int = MAX_EVENTS_PER_ENVELOPE


@dataclass(frozen=True)
class Record:
    """One record for the caliper topic."""

    key: bytes
    value: bytes
    events: int


@dataclass(frozen=True)
class Envelope:
    sensor: str
    send_time: datetime
    records: tuple[Record, ...]

    @property
    def events(self) -> int:
        return sum(r.events for r in self.records)


def learner(event: object, seen: dict[str, str | None] | None = None) -> str | None:
    """The learner of a Caliper event as SPEC §2.1 derives it: the last path segment of
    `actor.id`. None when there is no actor object with a string id. `seen` remembers the
    ids of one envelope (its events mostly share one actor)."""
    try:
        ref = event["actor"]["id"]  # a dict or a simdjson.Object; anything else raises
    except (KeyError, TypeError, IndexError, ValueError):
        return None
    if type(ref) is not str:
        return None
    if seen is None:
        return last_segment(ref) or None
    user = seen.get(ref, "")
    if user == "":
        user = seen[ref] = last_segment(ref) or None
    return user


@dataclass(frozen=True)
class Checked:
    """An envelope that passed the checks, before it is split."""

    doc: simdjson.Object
    sensor: str
    send_time: datetime


def split(body: bytes, limits: Limits = Limits()) -> Envelope:
    return records(check(body, limits), body, limits)


def check(body: bytes, limits: Limits = Limits()) -> Checked:
    """The envelope's checks (400, 413, 422), before anything is split or sent."""
    doc, send_time = _envelope(body)
    problem = id_problem(doc["sensor"], limits.max_id_length)
    if problem is not None:
        raise Refused(422, f"sensor: {problem}")
    problem = too_many_events(len(doc["data"]), limits.max_events)
    if problem is not None:
        raise Refused(413, problem)
    return Checked(doc, doc["sensor"], send_time)


# SPEC §2.5's ids of an event as JSON pointers (simdjson follows one in a call; a chain of
# lookups costs 20 times more), with their names as the worker's dead letters word them
_ID_POINTERS = tuple(("/" + "/".join(path), ".".join(path)) for path in CALIPER_ID_PATHS)


def event_id_problem(event: simdjson.Object, limit: int) -> str | None:
    """`identifiers.caliper_id_problem` for a lazily parsed event: the same words."""
    for pointer, name in _ID_POINTERS:
        try:
            value = event.at_pointer(pointer)
        except (KeyError, TypeError, IndexError, ValueError):  # absent, or not an object on the way
            continue
        if type(value) is str and (problem := id_problem(value, limit)) is not None:
            return f"{name}: {problem}"
    return None


_CONTROL_ESCAPE = re.compile(rb"\\(?:[bfnrt]|u00[01]|u007[fF])")  # JSON holds a control character only so


def may_break_limits(body: bytes, limit: int) -> bool:
    """Whether any string of the body may break SPEC §2.5 (never missing one; a few
    microseconds where looking at every event's ids costs 20 times more): an escaped
    control character, an escaped quote (a string then spans several quote-free runs), or
    a run of more than `limit` bytes without a quote, which holds a whole aligned block of
    about `limit / 2` bytes without one (a string of more than `limit` characters has more
    than `limit` bytes)."""
    if b"\\" in body and (_CONTROL_ESCAPE.search(body) is not None or b'\\"' in body):
        return True
    block = limit // 2 + 1
    find = body.find
    return any(find(b'"', start, start + block) < 0 for start in range(0, len(body) - block + 1, block))


def records(checked: Checked, body: bytes, limits: Limits = Limits()) -> Envelope:
    """The envelope's records: one per learner (keyed by the learner, that learner's events
    in their order), and one per event that names no learner (keyed by the sensor); 422
    for an event whose ids break SPEC §2.5, 413 past `bound(len(body))`."""
    doc, sensor = checked.doc, checked.sensor
    groups: dict[str, list] = {}
    loose: list = []
    seen: dict[str, str | None] = {}
    suspect = may_break_limits(body, limits.max_id_length)
    for n, event in enumerate(doc["data"]):
        if suspect and type(event) is simdjson.Object and (problem := event_id_problem(event, limits.max_id_length)):
            raise Refused(422, f"data[{n}].{problem}")
        user = learner(event, seen)
        if user is None:
            loose.append(event)
        else:
            groups.setdefault(user, []).append(event)
    if len(groups) == 1 and not loose:  # the common case: the body already is the record
        [user] = groups
        return Envelope(sensor, checked.send_time, (Record(user.encode(), body, len(doc["data"])),))
    head = b'{"sensor":%b,"sendTime":%b,"dataVersion":%b,"data":[' % (
        orjson.dumps(sensor), orjson.dumps(doc["sendTime"]), orjson.dumps(doc["dataVersion"]))
    grouped = [(user.encode(), [_json(e) for e in events]) for user, events in groups.items()]
    singles = [_json(event) for event in loose]
    key = sensor.encode()
    size = (sum(len(k) + len(head) + sum(map(len, events)) + len(events) + 1 for k, events in grouped)
            + sum(len(key) + len(head) + len(event) + 2 for event in singles))
    if size > bound(len(body)):
        raise Refused(413, f"split per learner this envelope would write {size:,} bytes, over twice its body plus "
                           f"64 KiB ({bound(len(body)):,}): each record repeats the envelope's head; send fewer events "
                           "without a learner per envelope, or a shorter sensor")
    out = [Record(k, head + b",".join(events) + b"]}", len(events)) for k, events in grouped]
    out += [Record(key, head + event + b"]}", 1) for event in singles]
    return Envelope(sensor, checked.send_time, tuple(out))


def _json(value: object) -> bytes:
    """An entry of `data` as JSON (simdjson's own minified text for objects and arrays)."""
    return value.mini if isinstance(value, simdjson.Object | simdjson.Array) else orjson.dumps(value)


_parser = [simdjson.Parser()]


def _parse(body: bytes) -> object:
    try:
        return _parser[0].parse(body)
    except RuntimeError as exc:
        if "re-use a parser" not in str(exc):
            raise
        _parser[0] = simdjson.Parser()  # an earlier document is still referenced somewhere
        return _parser[0].parse(body)


def _envelope(body: bytes) -> tuple[simdjson.Object, datetime]:
    try:
        doc = _parse(body)
    except (ValueError, RuntimeError) as exc:  # RuntimeError: integers beyond 64 bits
        raise Refused(400, f"malformed JSON: {exc}") from None
    if not isinstance(doc, simdjson.Object):
        raise Refused(400, f"no envelope: the body is a JSON {_kind(doc)}; send one Caliper envelope "
                           "{sensor, sendTime, dataVersion, data: [...]}")
    if "data" not in doc and "type" in doc:
        raise Refused(400, "no envelope: the body is a single Caliper event; wrap it in an envelope "
                           "{sensor, sendTime, dataVersion, data: [event]}")
    missing = [name for name in FIELDS if name not in doc]
    if missing:
        raise Refused(400, f"malformed envelope: missing {', '.join(missing)}")
    names = list(doc.keys())
    if len(names) != len(set(names)):
        raise Refused(400, "malformed envelope: a property is given twice (Caliper §5.2: once each)")
    extra = sorted(set(names) - set(FIELDS))
    if extra:
        raise Refused(400, f"malformed envelope: properties Caliper does not allow in an envelope: {', '.join(extra)}")
    if not isinstance(doc["sensor"], str) or not doc["sensor"]:
        raise Refused(400, "malformed envelope: sensor must be a non-empty string (the sensor's IRI)")
    if not isinstance(doc["dataVersion"], str):
        raise Refused(400, "malformed envelope: dataVersion must be a string (a Caliper context IRI)")
    try:
        send_time = parse_time(doc["sendTime"])
    except ValueError as exc:
        raise Refused(400, f"malformed envelope: sendTime {exc} (ISO-8601, e.g. 2026-11-21T10:00:05.250Z)") from None
    if not isinstance(doc["data"], simdjson.Array) or not len(doc["data"]):
        raise Refused(400, "malformed envelope: data must be an array of one or more events")
    if doc["dataVersion"] not in DATA_VERSIONS:
        raise Refused(422, f"unsupported dataVersion {doc['dataVersion'][:200]!r}: this endpoint accepts "
                           + " and ".join(DATA_VERSIONS), {"supportedVersions": list(DATA_VERSIONS)})
    return doc, send_time


def _kind(doc: object) -> str:
    return {simdjson.Array: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(doc), "number")
