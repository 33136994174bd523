"""The hot path's decoder: a Caliper record of valid TimeSpent events straight to the
plain values the rules use (`Heartbeat`), without building the models.

It accepts a record only when every event in it is one the contract models accept and
none is `future_event_time`; then its heartbeats equal `heartbeat_of` the models'
events. For anything else (a bad or other-typed event, a size or clock problem) it
returns None and `codec.decode` decides with the models, so dead letters and their
details never depend on this module. The checks below mirror events.py field by field
(strict types, the id pattern, non-empty ids, times with a zone, finite values >= 0,
windows in order); tests/unit/test_heartbeats.py proves on generated and damaged
events that it is never looser than the models. Work that does not change within a
record (parsing a repeated time, the last segment of a repeated actor or activity,
checking an actor or object equal to the previous event's) is done once per record."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import NamedTuple

import orjson

from xpbank.contract.events import URN_UUID, TimeSpentEvent, last_segment
from xpbank.contract.times import EPOCH, MICROSECOND, to_micros

_URN_UUID = re.compile(URN_UUID.pattern.removeprefix("^").removesuffix("$")).fullmatch  # `$`: end of text, as pydantic's
_fromisoformat = datetime.fromisoformat


class Heartbeat(NamedTuple):
    """One accepted TimeSpentEvent as the rules see it."""

    id: str  # `urn:uuid:…` as sent
    user: str
    resource: str
    time_us: int  # eventTime
    active: tuple[tuple[float, int | None], ...]  # per active item: (seconds, window µs or None if unanchored)


def heartbeat_of(event: TimeSpentEvent) -> Heartbeat:
    """The rules' view of a validated event."""
    active = tuple(
        (item.value, None if item.startDate is None or item.endDate is None
         else to_micros(item.endDate) - to_micros(item.startDate))
        for item in event.generated.items if item.type == "active"
    )
    return Heartbeat(event.id, event.user, event.resource, to_micros(event.eventTime), active)


class _Decline(Exception):
    """Not the common case: the models decide."""


def _micros(text: object, seen: dict[str, int]) -> int:
    """times.parse_time then to_micros, for a str (memoised per record)."""
    if type(text) is not str:
        raise _Decline
    micros = seen.get(text)
    if micros is None:
        try:
            moment = _fromisoformat(text)
            offset = moment.utcoffset()
            if offset is None:
                raise _Decline
            if offset:
                moment = moment.astimezone(UTC)  # may overflow: the models reject that
        except (ValueError, OverflowError):
            raise _Decline from None
        micros = seen[text] = (moment - EPOCH) // MICROSECOND
    return micros


def _optional_str(value: object) -> None:
    if value is not None and type(value) is not str:
        raise _Decline


def _non_empty(value: object) -> str:
    if type(value) is not str or not value:
        raise _Decline
    return value


class _Record:
    """What the events of one record share: parsed times, last segments, and the last
    actor and object checked (an envelope's events mostly repeat them)."""

    __slots__ = ("times", "segments", "actor", "user", "obj", "resource")

    def __init__(self) -> None:
        self.times: dict[str, int] = {}
        self.segments: dict[str, str] = {}
        self.actor = self.obj = None
        self.user = self.resource = ""

    def segment(self, ref: str) -> str:
        found = self.segments.get(ref)
        if found is None:
            found = self.segments[ref] = last_segment(ref)
        return found


def _event(doc: object, shared: _Record, timestamp_us: int | None, skew_us: int) -> Heartbeat:
    """events.TimeSpentEvent's checks, in plain Python."""
    if type(doc) is not dict:
        raise _Decline
    event_id = doc.get("id")
    if type(event_id) is not str or not _URN_UUID(event_id):
        raise _Decline
    if doc.get("type") != "TimeSpentEvent" or doc.get("action") != "SpentTime":
        raise _Decline
    actor = doc.get("actor")
    if actor != shared.actor or type(actor) is not dict:  # equal values pass equal checks
        if type(actor) is not dict:
            raise _Decline
        user = shared.segment(_non_empty(actor.get("id")))
        _optional_str(actor.get("email"))
        shared.actor, shared.user = actor, user
    obj = doc.get("object")
    if obj != shared.obj or type(obj) is not dict:
        if type(obj) is not dict:
            raise _Decline
        activity = obj.get("activity")
        if type(activity) is not dict:
            raise _Decline
        resource = shared.segment(_non_empty(activity.get("id")))
        course = obj.get("course")
        if course is not None:
            if type(course) is not dict:
                raise _Decline
            _non_empty(course.get("id"))
        _optional_str(obj.get("subject"))
        shared.obj, shared.resource = obj, resource
    time_us = _micros(doc.get("eventTime"), shared.times)
    if timestamp_us is not None and time_us - timestamp_us > skew_us:
        raise _Decline  # future_event_time: the models word the dead letter
    generated = doc.get("generated")
    if type(generated) is not dict:
        raise _Decline
    items = generated.get("items", ())
    if type(items) is not list and items != ():
        raise _Decline
    active = []
    for item in items:
        if type(item) is not dict:
            raise _Decline
        kind = item.get("type")
        value = item.get("value")
        if type(kind) is not str or (type(value) is not float and type(value) is not int) or not value >= 0:
            raise _Decline  # orjson gives no inf or nan; an int becomes a float as in the models
        start, end = item.get("startDate"), item.get("endDate")
        window = None
        if start is not None and end is not None:
            window = _micros(end, shared.times) - _micros(start, shared.times)
            if window < 0:
                raise _Decline  # endDate before startDate
        elif start is not None:
            _micros(start, shared.times)
        elif end is not None:
            _micros(end, shared.times)
        if kind == "active":
            active.append((float(value), window))
    return Heartbeat(event_id, shared.user, shared.resource, time_us, tuple(active))


def decode_heartbeats(value: bytes | None, timestamp: datetime | None, max_payload_bytes: int,
                      max_clock_skew_us: int) -> list[Heartbeat] | None:
    """The heartbeats of a caliper record (a single event or an envelope), or None when
    `codec.decode` has to decide (anything but valid TimeSpent events on time)."""
    if value is None or len(value) > max_payload_bytes:
        return None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if timestamp is not None and timestamp.tzinfo is None:
        return None
    timestamp_us = None if timestamp is None else (timestamp - EPOCH) // MICROSECOND
    shared = _Record()
    try:
        if type(doc) is dict and "data" in doc and "type" not in doc:  # an envelope, as codec routes it
            data = doc["data"]
            if type(data) is not list:
                return None
            _optional_str(doc.get("sensor"))
            _optional_str(doc.get("dataVersion"))
            if (send_time := doc.get("sendTime")) is not None:
                _micros(send_time, shared.times)
            return [_event(event, shared, timestamp_us, max_clock_skew_us) for event in data]
        return [_event(doc, shared, timestamp_us, max_clock_skew_us)]
    except _Decline:
        return None
