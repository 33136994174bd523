"""A Caliper envelope (IMS Caliper 1.2 §5.2, §6.1) checked at the edge and split into
one record per learner, as pure functions.

Checks are shallow on purpose: the envelope must be one (400 otherwise), its
`dataVersion` one the gateway speaks (422), and each event is only attributed to a learner
(`last_segment(actor.id)`, SPEC §2.1). The worker still validates every TimeSpentEvent and
dead-letters what is wrong, so nothing is decided twice and nothing is dropped here.

The body is parsed with simdjson, lazily: the whole document is validated, but only the
envelope's fields and each event's `actor.id` become Python objects (a third of the CPU
of `orjson.loads` for a 100-event envelope, see docs/benchmarks.md). One parser is reused
(a new one costs 15 us): simdjson's proxies point into its buffer, so `split` keeps none
of them, and a parser whose last document is still referenced is replaced."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
import simdjson

from xpbank.contract.events import last_segment
from xpbank.contract.times import parse_time
from xpbank.gateway.problems import Refused

V1P2 = "http://purl.imsglobal.org/ctx/caliper/v1p2"
V1P1 = "http://purl.imsglobal.org/ctx/caliper/v1p1"
DATA_VERSIONS = (V1P2, V1P1)
FIELDS = ("sensor", "sendTime", "dataVersion", "data")  # §5.2: each required, no others


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


def split(body: bytes) -> Envelope:
    """The envelope's records: one per learner (keyed by the learner, that learner's events
    in their order), and one per event that names no learner (keyed by the sensor)."""
    doc, send_time = _envelope(body)
    groups: dict[str, list] = {}
    loose: list = []
    seen: dict[str, str | None] = {}
    for event in doc["data"]:
        user = learner(event, seen)
        if user is None:
            loose.append(event)
        else:
            groups.setdefault(user, []).append(event)
    sensor = doc["sensor"]
    if len(groups) == 1 and not loose:  # the common case: the body already is the record
        [user] = groups
        records = [Record(user.encode(), body, len(doc["data"]))]
    else:
        head = b'{"sensor":%b,"sendTime":%b,"dataVersion":%b,"data":[' % (
            orjson.dumps(sensor), orjson.dumps(doc["sendTime"]), orjson.dumps(doc["dataVersion"]))
        records = [Record(user.encode(), head + b",".join(map(_json, events)) + b"]}", len(events))
                   for user, events in groups.items()]
        records += [Record(sensor.encode(), head + _json(event) + b"]}", 1) for event in loose]
    return Envelope(sensor, send_time, tuple(records))


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
