"""Time accounting per (user, resource) (SPEC §2.1 credit guard, §3.1).

Seconds are credited in integer milliseconds so that sums are exact and do not depend
on the order in which heartbeats arrive."""

from __future__ import annotations

import uuid
from typing import NamedTuple

from xpbank.core.rules import Rules
from xpbank.contract.times import to_micros
from xpbank.contract.events import TimeSpentEvent


MAX_CLAIM_MS = float(2**53)


class TimeEntry(NamedTuple):
    time_us: int
    credited_ms: int
    event_id: str


class Credit(NamedTuple):
    credited_ms: int
    clamped_ms: int


def credit(event: TimeSpentEvent, rules: Rules) -> Credit:
    """Active seconds of one event, each item capped by its own window (or the
    unanchored limit), so a runaway client cannot credit more than wall time."""
    credited = clamped = 0
    for item in event.generated.items:
        if item.type != "active":
            continue
        claimed = int(min(item.value * 1000, MAX_CLAIM_MS) + 0.5)  # 1e308 s stays finite
        if item.startDate is not None and item.endDate is not None:
            cap = (to_micros(item.endDate) - to_micros(item.startDate)) // 1000 + 1000
        else:
            cap = rules.max_unanchored_seconds * 1000
        credited += min(claimed, cap)
        clamped += max(0, claimed - cap)
    return Credit(credited, clamped)


def entry_id(event_id: str) -> str:
    """The canonical (lowercase) form of a `urn:uuid:` id, as stored and compared."""
    return f"urn:uuid:{uuid.UUID(event_id[9:])}"


def seconds_up_to(entries: tuple[TimeEntry, ...], t_us: int) -> int:
    """Credited milliseconds of the events with eventTime <= t (all of history)."""
    return sum(e.credited_ms for e in entries if e.time_us <= t_us)


def has_event(entries: tuple[TimeEntry, ...], event_id: str) -> bool:
    return any(e.event_id == event_id for e in entries)


def with_entry(entries: tuple[TimeEntry, ...], entry: TimeEntry) -> tuple[TimeEntry, ...]:
    # kept sorted so the stored value is the same whatever the arrival order
    return tuple(sorted((*entries, entry)))
