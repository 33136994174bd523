"""Time accounting per (user, resource) (SPEC §2.1 credit guard, §3.1).

Seconds are credited in integer milliseconds so that sums are exact and do not depend
on the order in which heartbeats arrive.

A pair's read time is one immutable bytes value: its accepted events packed 32 bytes
each (event time µs and credited ms as big-endian int64, the event's uuid), sorted by
(time, credited, id), so it is the same whatever the arrival order. The table
encoding stores it as it is (processing/state_codec.py), so reading and writing a pair
never unpacks it; a heartbeat appends 32 bytes, and only the rules that need the
entries (sums up to a mastery's T) read them."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable
from typing import NamedTuple

from xpbank.contract.heartbeats import id_key

MAX_CLAIM_MS = float(2**53)
ENTRY = struct.Struct(">qq16s")
ENTRY_SIZE = ENTRY.size  # 32
_UUID_AT = 16  # offset of the uuid inside an entry


class TimeEntry(NamedTuple):
    time_us: int
    credited_ms: int
    event_id: str  # canonical (lowercase) `urn:uuid:`


def credit(active: tuple[tuple[float, int | None], ...], max_unanchored_ms: int) -> tuple[int, int]:
    """(credited, clamped) ms of one event's active items (Heartbeat.active), each item
    capped by its own window (or the unanchored limit), so a runaway client cannot
    credit more than wall time."""
    credited = clamped = 0
    for value, window_us in active:
        claimed = value * 1000
        claimed = int((claimed if claimed < MAX_CLAIM_MS else MAX_CLAIM_MS) + 0.5)  # 1e308 s stays finite
        cap = max_unanchored_ms if window_us is None else window_us // 1000 + 1000
        if claimed > cap:
            credited += cap
            clamped += claimed - cap
        else:
            credited += claimed
    return credited, clamped


def entry_id(event_id: str) -> str:
    """The canonical (lowercase) form of a `urn:uuid:` id (one that matched the
    contract's pattern), as stored and compared: what str(uuid.UUID(...)) gives."""
    return event_id.lower()


event_key = id_key  # the 16 bytes of a pattern-valid `urn:uuid:` id, as entries store it
entry = ENTRY.pack  # (time µs, credited ms, event key) -> an entry


def has_event(entries: bytes, key: bytes) -> bool:
    at = entries.find(key, _UUID_AT)
    while at != -1:
        if at % ENTRY_SIZE == _UUID_AT:
            return True
        at = entries.find(key, at + 1)
    return False


def _order(packed: bytes) -> tuple[int, int, bytes]:
    return ENTRY.unpack(packed)  # uuid bytes order = canonical id text order


def with_entry(entries: bytes, new: bytes) -> bytes:
    # In time order (the usual case) an entry goes last; bytes compare as numbers
    # while both times are >= 0 (the sign bit), else the entries are sorted again.
    if not entries:
        return new
    if new[0] < 0x80 and entries[-ENTRY_SIZE] < 0x80 and new > entries[-ENTRY_SIZE:]:
        return entries + new
    chunks = [entries[at:at + ENTRY_SIZE] for at in range(0, len(entries), ENTRY_SIZE)]
    return b"".join(sorted([*chunks, new], key=_order))


def seconds_up_to(entries: bytes, t_us: int) -> int:
    """Credited milliseconds of the events with eventTime <= t (all of history)."""
    return sum(credited for time_us, credited, _ in ENTRY.iter_unpack(entries) if time_us <= t_us)


def count(entries: bytes) -> int:
    return len(entries) // ENTRY_SIZE


def pack(entries: Iterable[TimeEntry]) -> bytes:
    """Entries (any order) as a pair's read time."""
    return b"".join(sorted((entry(e.time_us, e.credited_ms, event_key(e.event_id)) for e in entries), key=_order))


def unpack(entries: bytes) -> tuple[TimeEntry, ...]:
    return tuple(TimeEntry(time_us, credited, f"urn:uuid:{uuid.UUID(bytes=key)}")
                 for time_us, credited, key in ENTRY.iter_unpack(entries))
