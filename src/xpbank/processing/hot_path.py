"""The common record in one pass: one learner's TimeSpent heartbeats on its own
partition, on time, each new to a pair with no decision to revisit and no evidence to
publish, every one accepted with nothing else to say.

Most records a worker reads are this (apps send a heartbeat every 30 s, alone or in an
envelope). Through the layers (contract/heartbeats.decode_heartbeats, the handler, then
core/time_spent.record_time_spent) a record's events are built as heartbeats, handed
down and looped over twice; here they are checked and applied in one loop, about a fifth
faster for a single heartbeat (docs/benchmarks.md). The layers stay the reference: the
checks are the decoder's, through its helpers, and the arithmetic is credit's; for any
other record (a check that fails, a heartbeat too late, clamped, already counted, on a
pair with a decision or evidence, another learner's) `owner_heartbeats` returns None
before it writes anything, and the layers decide it from scratch.
tests/unit/test_hot_path.py proves on generated classrooms and damaged records that
every record gives the same outputs, counters and state with it and without it."""

from __future__ import annotations

from msgspec import UNSET

from xpbank.contract.heartbeats import (DECODE_ERRORS, Decline, checked_segment, decode_event, decode_record,
                                        envelope_events, known_segments)
from xpbank.contract.records import InputRecord
from xpbank.contract.times import text_micros, to_micros
from xpbank.core.banking import EMPTY_PAIR, PairState
from xpbank.core.read_time import ENTRY_SIZE, MAX_CLAIM_MS, entry, has_event, with_entry
from xpbank.core.rules import Rules
from xpbank.processing.state import StateStore

_fromhex = bytes.fromhex
_new_pair = tuple.__new__  # PairState(...) without its Python-level __new__: per heartbeat
_NO_TIMESTAMP_US = 1 << 62  # past any event time (year 9999 is below 2**58 µs): no skew check


def owner_heartbeats(store: StateStore, record: InputRecord, rules: Rules, owner: str) -> int | None:
    """How many heartbeats a caliper record gave `owner`, all accepted and written to
    `store`; None, with nothing written, when the layers have to decide."""
    value, timestamp = record.value, record.timestamp
    if value is None or len(value) > rules.max_payload_bytes:
        return None
    if timestamp is None:
        latest_us = _NO_TIMESTAMP_US
    elif timestamp.tzinfo is None:
        return None
    else:
        latest_us = to_micros(timestamp) + rules.max_clock_skew_seconds * 1_000_000
    try:
        try:  # as contract/heartbeats.decode_heartbeats: one event first, then an envelope
            events = (decode_event(value),)
        except DECODE_ERRORS:
            doc = decode_record(value)  # an event the Struct refused (declined here), or an envelope
            events = None if doc.type is not UNSET else \
                envelope_events(doc, rules.max_events_per_envelope, rules.max_id_length)
        changes = _accepted(store, events, latest_us, rules, owner) if events else None
    except (*DECODE_ERRORS, Decline, ValueError):  # ValueError: a time or id the models refuse
        return None
    if changes is None:
        return None
    before, watermark, changed = changes
    store.set_time_spent(owner, None if watermark == before else watermark, changed)
    return len(events)


def _accepted(store: StateStore, events, latest_us: int, rules: Rules, owner: str):
    """(watermark before, watermark after, changed pairs) when every event passes the decoder's
    checks (heartbeats._events, raising where it declines) and time_spent accepts it, else None."""
    max_id, lateness_us = rules.max_id_length, rules.lateness_seconds * 1_000_000
    segments = known_segments(max_id)
    before, pairs = store.time_spent(owner)
    watermark, changed = before, {}
    last_actor = last_activity = last_course = last_end = None
    resource, last_end_us, (entries, decision, explains) = "", 0, EMPTY_PAIR
    for event in events:
        event_id = event.id  # events.URN_UUID, in the decoder's steps
        if len(event_id) != 45 or event_id[:9] != "urn:uuid:" or event_id[17:33:5] != "----" \
                or len(key := _fromhex(event_id[9:].replace("-", ""))) != 16:
            return None
        if (actor := event.actor.id) != last_actor:
            if (segments.get(actor) or checked_segment(segments, actor, max_id)) != owner:
                return None  # another learner's: routed by the layers
            last_actor = actor
        obj = event.object
        if (activity := obj.activity.id) != last_activity:  # a pair read once per run of its events
            if last_activity is not None:
                changed[resource] = _new_pair(PairState, (entries, decision, explains))
            resource = segments.get(activity) or checked_segment(segments, activity, max_id)
            entries, decision, explains = changed.get(resource) or pairs.get(resource, EMPTY_PAIR)
            if explains:
                return None  # evidence to publish again
            last_activity = activity
        if (course := obj.course) is not None and (course := course.id) != last_course:
            if course not in segments:
                checked_segment(segments, course, max_id)
            last_course = course
        text = event.eventTime
        time_us = text_micros(text)
        if time_us > latest_us or (watermark is not None and time_us < watermark - lateness_us):
            return None  # future_event_time, too_late
        items = event.generated.items  # one active item with a window, as apps send it
        if len(items) != 1 or (item := items[0]).type != "active" or (start := item.startDate) is None \
                or (end := item.endDate) is None:
            return None
        start_us = last_end_us if start == last_end else text_micros(start)  # often the previous event's end
        end_us = time_us if end == text else text_micros(end)
        last_end, last_end_us = end, end_us
        claimed = item.value * 1000  # read_time.credit, unclamped
        credited = int((claimed if claimed < MAX_CLAIM_MS else MAX_CLAIM_MS) + 0.5)
        if end_us < start_us or credited > (end_us - start_us) // 1000 + 1000:
            return None  # endDate before startDate, or clamped
        if (decision is not None and time_us <= decision.decided_us) \
                or (entries and entries.find(key) != -1 and has_event(entries, key)):
            return None  # a decision to revisit, a duplicate
        new = entry(time_us, credited, key)
        if not entries:  # read_time.with_entry without the call: a first entry
            entries = new
        elif new[0] < 0x80 and entries[-ENTRY_SIZE] < 0x80 and new > entries[-ENTRY_SIZE:]:
            entries += new  # and one in time order, the usual case
        else:
            entries = with_entry(entries, new)
        if watermark is None or time_us > watermark:
            watermark = time_us
    changed[resource] = _new_pair(PairState, (entries, decision, explains))
    return before, watermark, changed
