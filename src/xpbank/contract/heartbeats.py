"""The hot path's decoder: a Caliper record of valid TimeSpent events straight to the
plain values the rules use (`Heartbeat`), without building the models.

It accepts a record only when every event in it is one the contract models accept and
none is `future_event_time`; then its heartbeats equal `heartbeat_of` the models'
events. For anything else (a bad or other-typed event, a size or clock problem) it
returns None and `codec.decode` decides with the models, so dead letters and their
details never depend on this module. The checks below mirror events.py field by field
(strict types, the id pattern, non-empty ids, times with a zone, finite values >= 0,
windows in order, SPEC §2.5's limits on ids and envelopes); tests/unit/test_heartbeats.py proves on generated and damaged
events that it is never looser than the models. Work that does not change within a
record (parsing a repeated time, checking an actor or object equal to the previous
event's) is done once per record, and the last segment of an actor or activity id once
while that id recurs."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple

import orjson

from xpbank.contract.events import TimeSpentEvent, last_segment
from xpbank.contract.identifiers import MAX_EVENTS_PER_ENVELOPE, MAX_ID_LENGTH, id_problem
from xpbank.contract.times import EPOCH, MICROSECOND, to_micros

_fromisoformat = datetime.fromisoformat
_fromhex = bytes.fromhex
# learners and resources recur from record to record: their ids' last segments are kept
_segment = lru_cache(maxsize=1 << 16)(last_segment)


class Heartbeat(NamedTuple):
    """One accepted TimeSpentEvent as the rules see it."""

    id: str  # `urn:uuid:…` as sent
    user: str
    resource: str
    time_us: int  # eventTime
    active: tuple[tuple[float, int | None], ...]  # per active item: (seconds, window µs or None if unanchored)
    key: bytes  # the id's 16 bytes


def id_key(event_id: str) -> bytes:
    """The 16 bytes of an id that matched the contract's `urn:uuid:` pattern."""
    return _fromhex(event_id[9:].replace("-", ""))


def heartbeat_of(event: TimeSpentEvent) -> Heartbeat:
    """The rules' view of a validated event."""
    active = tuple(
        (item.value, None if item.startDate is None or item.endDate is None
         else to_micros(item.endDate) - to_micros(item.startDate))
        for item in event.generated.items if item.type == "active"
    )
    return Heartbeat(event.id, event.user, event.resource, to_micros(event.eventTime), active, id_key(event.id))


def _micros(text: object) -> int:
    """times.parse_time then to_micros; raises _Decline where parse_time fails."""
    if type(text) is not str:
        raise _Decline
    try:
        moment = _fromisoformat(text)
        if moment.tzinfo is not UTC:  # "Z" and "+00:00" give UTC itself
            offset = moment.utcoffset()
            if offset is None:
                raise _Decline
            moment = moment.astimezone(UTC)  # may overflow: the models reject that
    except (ValueError, OverflowError):
        raise _Decline from None
    return (moment - EPOCH) // MICROSECOND


class _Decline(Exception):
    """Not the common case: the models decide."""


# A missing required field (KeyError), a value of the wrong type where the checks use it
# (TypeError: an unhashable time, a str compared with 0) or an id whose hex digits do not
# read (ValueError) declines like _Decline.
_DECLINED = (_Decline, KeyError, TypeError, ValueError)


def decode_heartbeats(value: bytes | None, timestamp: datetime | None, max_payload_bytes: int,
                      max_clock_skew_us: int, max_id_length: int = MAX_ID_LENGTH,
                      max_events: int = MAX_EVENTS_PER_ENVELOPE) -> list[Heartbeat] | None:
    """The heartbeats of a caliper record (a single event or an envelope), or None when
    `codec.decode` has to decide (anything but valid TimeSpent events on time)."""
    if value is None or len(value) > max_payload_bytes:
        return None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if timestamp is None:
        timestamp_us = None
    elif timestamp.tzinfo is None:
        return None
    else:
        timestamp_us = (timestamp - EPOCH) // MICROSECOND
    times: dict[str, int] = {}  # what does not change within a record is worked out once
    try:
        if type(doc) is dict and "data" in doc and "type" not in doc:  # an envelope, as codec routes it
            data = doc["data"]
            if type(data) is not list or len(data) > max_events:
                return None
            if (sensor := doc.get("sensor")) is not None:
                _check_id(sensor, max_id_length, empty=True)
            _optional_str(doc.get("dataVersion"))
            if (send_time := doc.get("sendTime")) is not None:
                times[send_time] = _micros(send_time)
            return _events(data, times, timestamp_us, max_clock_skew_us, max_id_length)
        return _events((doc,), times, timestamp_us, max_clock_skew_us, max_id_length)
    except _DECLINED:
        return None


def _events(docs, times: dict[str, int], timestamp_us: int | None, skew_us: int, max_id: int) -> list[Heartbeat]:
    """events.TimeSpentEvent's checks, in plain Python, for every event of a record.
    An actor or object equal to the previous event's passed the same checks."""
    beats: list[Heartbeat] = []
    last_actor = last_object = None
    user = resource = ""
    for doc in docs:
        if type(doc) is not dict:
            raise _Decline
        # events.URN_UUID, in steps: 45 characters, the prefix, four dashes in place and 32
        # hex digits between them (whitespace or more dashes would leave fewer than 16 bytes)
        event_id = doc["id"]
        if (type(event_id) is not str or len(event_id) != 45 or event_id[:9] != "urn:uuid:" or event_id[17] != "-"
                or event_id[22] != "-" or event_id[27] != "-" or event_id[32] != "-"):
            raise _Decline
        key = _fromhex(event_id[9:].replace("-", ""))
        if len(key) != 16:
            raise _Decline
        if doc["type"] != "TimeSpentEvent" or doc["action"] != "SpentTime":
            raise _Decline
        actor = doc["actor"]
        if actor != last_actor or type(actor) is not dict:
            user = _user_of(actor, max_id)
            last_actor = actor
        obj = doc["object"]
        if obj != last_object or type(obj) is not dict:
            resource = _resource_of(obj, max_id)
            last_object = obj
        text = doc["eventTime"]
        time_us = times.get(text)  # times holds str keys only: another type misses, then declines
        if time_us is None:
            time_us = times[text] = _micros(text)
        if timestamp_us is not None and time_us - timestamp_us > skew_us:
            raise _Decline  # future_event_time: the models word the dead letter
        active = _active(doc["generated"], times)
        beats.append(_heartbeat(Heartbeat, (event_id, user, resource, time_us, active, key)))
    return beats


def _user_of(actor: object, max_id: int) -> str:
    """The learner of an actor unlike the previous event's, after events.Actor's checks."""
    if type(actor) is not dict:
        raise _Decline
    ref = actor["id"]
    _check_id(ref, max_id)
    _optional_str(actor.get("email"))
    return _segment(ref)


def _resource_of(obj: object, max_id: int) -> str:
    """The resource of an object unlike the previous event's, after events.Object's checks."""
    if type(obj) is not dict:
        raise _Decline
    activity = obj["activity"]
    if type(activity) is not dict:
        raise _Decline
    ref = activity["id"]
    _check_id(ref, max_id)
    course = obj.get("course")
    if course is not None:
        if type(course) is not dict:
            raise _Decline
        _check_id(course["id"], max_id)
    _optional_str(obj.get("subject"))
    return _segment(ref)


def _active(generated: object, times: dict[str, int]) -> tuple[tuple[float, int | None], ...]:
    """Heartbeat.active of an event's `generated`, after the checks of its items (of
    every type: an inactive item with bad values or windows declines too)."""
    if type(generated) is not dict:
        raise _Decline
    items = generated.get("items", ())
    if type(items) is not list and items != ():
        raise _Decline
    active: tuple = ()
    for item in items:
        if type(item) is not dict:
            raise _Decline
        kind = item["type"]
        value = item["value"]
        if type(kind) is not str or (type(value) is not float and type(value) is not int) or not value >= 0:
            raise _Decline  # orjson gives no inf or nan; an int becomes a float as in the models
        start, end = item.get("startDate"), item.get("endDate")
        if start is not None:
            start_us = times.get(start)
            if start_us is None:
                start_us = times[start] = _micros(start)
        if end is not None:
            end_us = times.get(end)
            if end_us is None:
                end_us = times[end] = _micros(end)
        if kind == "active":
            if start is None or end is None:
                active += ((float(value), None),)
            elif end_us < start_us:
                raise _Decline  # endDate before startDate
            else:
                active += ((float(value), end_us - start_us),)
        elif start is not None and end is not None and end_us < start_us:
            raise _Decline
    return active


_heartbeat = tuple.__new__


def _check_id(value: object, max_id: int, empty: bool = False) -> None:
    """events.Id (events.Limited with `empty`): a string within SPEC §2.5's limits."""
    if type(value) is not str or (not value and not empty) or id_problem(value, max_id) is not None:
        raise _Decline


def _optional_str(value: object) -> None:
    if value is not None and type(value) is not str:
        raise _Decline
