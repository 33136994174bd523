"""The hot path's decoder: a Caliper record of valid TimeSpent events straight to the
plain values the rules use (`Heartbeat`), without building the models.

msgspec (a compiled library with wheels, pinned) parses the JSON and checks its shape
and types in one C pass into the Structs below: strict strings, a number (not a bool)
>= 0 for an item's value, nested objects where the models want them; the other fields
of the IMS and Timeback shapes are decoded (so checked) and dropped, and a record with
any other field declines (msgspec would skip it unchecked). What msgspec cannot say in a
type stays in Python
here: the `urn:uuid:` id, SPEC §2.5's limits on ids and envelopes, times with a zone
(parsed as times.parse_time parses them, never by msgspec's own RFC 3339 parser, which
reads some strings differently), windows in order.

It accepts a record only when every event in it is one the contract models accept and
none is `future_event_time`; then its heartbeats equal `heartbeat_of` the models'
events. For anything else (a bad or other-typed event, a size or clock problem, any
msgspec error) it returns None and `codec.decode` decides with the models, so dead
letters and their details never depend on this module. tests/unit/test_heartbeats.py
proves on generated and damaged records that it is never looser than the models. Work
that does not change within a record (parsing a window's end again as the event's time
or the next event's start, checking an actor, activity or course id equal to the
previous event's) is done once per record, the last segment of an actor or activity id
once while that id recurs, and a time in the shape apps send is read as a second and a
fraction seen before (times.text_micros). processing/hot_path.py makes the same checks
with the helpers here for the common record, in one loop with the rule."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType, field

from xpbank.contract.events import TimeSpentEvent, last_segment
from xpbank.contract.identifiers import MAX_EVENTS_PER_ENVELOPE, MAX_ID_LENGTH, id_problem
from xpbank.contract.times import text_micros, to_micros

_fromhex = bytes.fromhex


class Decline(Exception):
    """Not the common case: the models decide."""


# The last segments of ids already checked, by the id length limit then the id: learners,
# resources and courses recur from record to record. Looked up in `_events` itself (an
# lru_cache builds a key tuple per call, which costs more than the lookup); each limit's
# ids are forgotten past _SEGMENTS_KEPT.
_SEGMENTS: dict[int, dict[str, str]] = {}
_SEGMENTS_KEPT = 1 << 16


def checked_segment(segments: dict[str, str], ref: str, max_id: int) -> str:
    """The last segment of an id not in `segments` (events.Id: non-empty, within SPEC
    §2.5's limits; msgspec checked it is a string), kept there; raises Decline (never
    kept) for any other."""
    if not ref or id_problem(ref, max_id) is not None:
        raise Decline
    if len(segments) >= _SEGMENTS_KEPT:
        segments.clear()
    segment = segments[ref] = last_segment(ref)
    return segment


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


# ---- the shapes events.py's models accept, as msgspec Structs -------------------------
# msgspec skips an unknown field without the checks orjson makes (UTF-8, numbers that
# overflow to infinity), so no field is unknown here: the fields the models use are
# typed; the other fields of the IMS and Timeback shapes are `_Extra`, decoded and so
# checked as orjson checks them, then dropped; a record with any other field declines.

_Extra = Any


class _Shape(Struct, forbid_unknown_fields=True, gc=False):  # acyclic: no gc tracking
    pass


class _Ref(_Shape):  # events.CaliperRef
    id: str
    type: _Extra = None
    name: _Extra = None
    extensions: _Extra = None


class _Actor(_Ref):  # events.CaliperActor
    email: str | None = None


class _Object(_Shape):  # events.TimebackActivityContext
    activity: _Ref
    course: _Ref | None = None
    subject: str | None = None
    id: _Extra = None
    type: _Extra = None
    app: _Extra = None
    process: _Extra = None
    extensions: _Extra = None


class _Item(_Shape):  # events.TimeSpentItem; times stay text, parsed below
    type: str
    value: Annotated[float, Meta(ge=0)]  # an int becomes a float; JSON has no inf or nan
    startDate: str | None = None
    endDate: str | None = None


class _Generated(_Shape):  # events.TimeSpentMetrics
    items: list[_Item] = []
    id: _Extra = None
    type: _Extra = None
    extensions: _Extra = None


class _Extras(_Shape, kw_only=True):  # an event's (and an envelope's) fields the rules never read
    context: _Extra = field(default=None, name="@context")
    profile: _Extra = None
    edApp: _Extra = None
    session: _Extra = None
    extensions: _Extra = None


class _Event(_Extras):  # events.TimeSpentEvent
    id: str
    type: Literal["TimeSpentEvent"]  # any other event type declines: the models route it
    action: Literal["SpentTime"]
    actor: _Actor
    object: _Object
    eventTime: str
    generated: _Generated


class _Record(_Extras):
    """A single event or an envelope (`data` without `type`, as codec routes it): every
    field optional here, the ones a shape requires checked below."""

    id: str | UnsetType = UNSET
    type: Literal["TimeSpentEvent"] | UnsetType = UNSET
    action: Literal["SpentTime"] | UnsetType = UNSET
    actor: _Actor | UnsetType = UNSET
    object: _Object | UnsetType = UNSET
    eventTime: str | UnsetType = UNSET
    generated: _Generated | UnsetType = UNSET
    data: list[_Event] | UnsetType = UNSET
    sensor: str | None = None
    sendTime: str | None = None
    dataVersion: str | None = None


decode_record = msgspec.json.Decoder(_Record).decode
decode_event = msgspec.json.Decoder(_Event).decode  # a record that is exactly one event
DECODE_ERRORS = (msgspec.DecodeError, RecursionError)  # msgspec nests as deep as Python's recursion limit


def decode_heartbeats(value: bytes | None, timestamp: datetime | None, max_payload_bytes: int,
                      max_clock_skew_us: int, max_id_length: int = MAX_ID_LENGTH,
                      max_events: int = MAX_EVENTS_PER_ENVELOPE) -> list[Heartbeat] | None:
    """The heartbeats of a caliper record (a single event or an envelope), or None when
    `codec.decode` has to decide (anything but valid TimeSpent events on time)."""
    if value is None or len(value) > max_payload_bytes:
        return None
    try:  # first as one event: its Struct checks the fields an event requires, in C
        doc = decode_event(value)
    except DECODE_ERRORS:  # an envelope fails at its first field (~0.4 µs)
        try:
            doc = decode_record(value)
        except DECODE_ERRORS:  # not JSON, or not the shapes above: the models say which
            return None  # (msgspec nests as deep as Python's recursion limit, 1000, below orjson's 1024)
    if timestamp is None:
        timestamp_us = None
    elif timestamp.tzinfo is None:
        return None
    else:
        timestamp_us = to_micros(timestamp)
    times: dict[str, int] = {}  # what does not change within a record is worked out once
    try:
        if type(doc) is _Event:
            return _events((doc,), times, timestamp_us, max_clock_skew_us, max_id_length)
        if doc.type is UNSET:
            data = envelope_events(doc, max_events, max_id_length)
            return None if data is None else _events(data, times, timestamp_us, max_clock_skew_us, max_id_length)
        if (doc.id is UNSET or doc.action is UNSET or doc.actor is UNSET or doc.object is UNSET
                or doc.eventTime is UNSET or doc.generated is UNSET):
            return None
        return _events((doc,), times, timestamp_us, max_clock_skew_us, max_id_length)
    except (Decline, ValueError):  # ValueError: a time parse_time refuses
        return None


def envelope_events(doc: _Record, max_events: int, max_id: int) -> list[_Event] | None:
    """The events of an envelope (a record decoded with `data` and no `type`) after the
    envelope's own checks; None, or a ValueError for its sendTime, where the models decide."""
    if (data := doc.data) is UNSET or len(data) > max_events:
        return None
    if (sensor := doc.sensor) is not None and id_problem(sensor, max_id) is not None:  # may be empty
        return None
    if (send_time := doc.sendTime) is not None:
        text_micros(send_time)
    return data


def known_segments(max_id: int) -> dict[str, str]:
    """The checked ids' last segments kept for an id length limit."""
    segments = _SEGMENTS.get(max_id)
    if segments is None:
        segments = _SEGMENTS[max_id] = {}
    return segments


def _events(docs, times: dict[str, int], timestamp_us: int | None, skew_us: int, max_id: int) -> list[Heartbeat]:
    """events.TimeSpentEvent's checks msgspec did not make, for every event of a record.
    An actor, activity or course id equal to the previous event's passed the same check."""
    beats: list[Heartbeat] = []
    last_actor = last_activity = last_course = None  # ids: the checks below read nothing else
    user = resource = ""
    segments = known_segments(max_id)
    for doc in docs:
        # events.URN_UUID, in steps: 45 characters, the prefix, four dashes in place (17, 22,
        # 27, 32) and 32 hex digits between them (whitespace or more dashes would leave
        # fewer than 16 bytes)
        event_id = doc.id
        if len(event_id) != 45 or event_id[:9] != "urn:uuid:" or event_id[17:33:5] != "----":
            raise Decline
        try:
            key = _fromhex(event_id[9:].replace("-", ""))
        except ValueError:
            raise Decline from None
        if len(key) != 16:
            raise Decline
        if (actor := doc.actor.id) != last_actor:
            if (user := segments.get(actor)) is None:
                user = checked_segment(segments, actor, max_id)
            last_actor = actor
        obj = doc.object
        if (activity := obj.activity.id) != last_activity:
            if (resource := segments.get(activity)) is None:
                resource = checked_segment(segments, activity, max_id)
            last_activity = activity
        if (course := obj.course) is not None and (course := course.id) != last_course:
            if course not in segments:
                checked_segment(segments, course, max_id)
            last_course = course
        text = doc.eventTime  # rarely seen before in the record: no lookup in `times`
        time_us = text_micros(text)
        if timestamp_us is not None and time_us - timestamp_us > skew_us:
            raise Decline  # future_event_time: the models word the dead letter
        items = doc.generated.items  # one active item with a window, as apps send it, inline
        if len(items) == 1 and (item := items[0]).type == "active" and (start := item.startDate) is not None \
                and (end := item.endDate) is not None:
            start_us = times.get(start)  # often the previous event's end
            if start_us is None:
                start_us = text_micros(start)
            if end == text:  # as apps send it
                end_us = times[end] = time_us
            else:
                end_us = times.get(end)
                if end_us is None:
                    end_us = times[end] = text_micros(end)
            if end_us < start_us:
                raise Decline  # endDate before startDate
            active = ((item.value, end_us - start_us),)
        else:
            active = _active(items, times)
        beats.append(_heartbeat(Heartbeat, (event_id, user, resource, time_us, active, key)))
    return beats


def _active(items: list[_Item], times: dict[str, int]) -> tuple[tuple[float, int | None], ...]:
    """Heartbeat.active of an event's items, after the checks of its items' windows (of
    every type: an inactive item with a window out of order declines too). `_events`
    reads a lone active item with both dates itself, saving a call per heartbeat."""
    active: tuple = ()
    for item in items:
        start, end = item.startDate, item.endDate
        if start is not None:
            start_us = times.get(start)
            if start_us is None:
                start_us = times[start] = text_micros(start)
        if end is not None:
            end_us = times.get(end)
            if end_us is None:
                end_us = times[end] = text_micros(end)
        if item.type == "active":
            if start is None or end is None:
                active += ((item.value, None),)
            elif end_us < start_us:
                raise Decline  # endDate before startDate
            else:
                active += ((item.value, end_us - start_us),)
        elif start is not None and end is not None and end_us < start_us:
            raise Decline
    return active


_heartbeat = tuple.__new__
