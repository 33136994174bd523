"""Accepting TimeSpent events for one user (SPEC §3.1, §3.4.6, §3.6 lateness).

Takes the user's watermark and the (user, resource) pairs the events touch, so the
shell reads and writes each touched pair once per record, however many events it has."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from xpbank.core.banking import EMPTY_PAIR, PairState, redecide
from xpbank.core.outcome import NOTHING, Outcome, counted, rejected
from xpbank.core.read_time import TimeEntry, credit, entry_id, has_event, with_entry
from xpbank.core.rules import Rules
from xpbank.contract.times import format_time, from_micros, to_micros
from xpbank.contract.events import TimeSpentEvent


def record_time_spent(
    watermark_us: int | None,
    pairs: Mapping[str, PairState],
    events: Iterable[TimeSpentEvent],
    rules: Rules,
) -> tuple[int | None, dict[str, PairState], Outcome]:
    """Returns the new watermark, the changed pairs by resource, and the outcome."""
    changed: dict[str, PairState] = {}
    outcome = NOTHING
    for event in events:
        t_us = to_micros(event.eventTime)
        if watermark_us is not None and t_us < watermark_us - rules.lateness_us:
            horizon = format_time(from_micros(watermark_us - rules.lateness_us))
            outcome += rejected("too_late", f"eventTime is before the lateness horizon {horizon}", event.id)
            continue
        resource = event.resource
        pair = changed.get(resource) or pairs.get(resource, EMPTY_PAIR)
        event_id = entry_id(event.id)
        if has_event(pair.entries, event_id):
            # accepted before, so already in the watermark - unless a crash lost that write
            watermark_us = t_us if watermark_us is None else max(watermark_us, t_us)
            outcome += counted("duplicates")
            continue
        credited, clamped = credit(event, rules)
        if clamped:
            outcome += counted("clamped_ms", clamped)
        pair = pair.model_copy(update={"entries": with_entry(pair.entries, TimeEntry(t_us, credited, event_id))})
        if pair.decision is not None and event.eventTime <= pair.decision.decided_at:
            outcome += counted("late_events")
            pair, awarded = redecide(pair, event.user, resource, rules)
            outcome += awarded
        changed[resource] = pair
        watermark_us = t_us if watermark_us is None else max(watermark_us, t_us)
        outcome += counted("time_spent_accepted")
        if pair.explains:
            outcome += Outcome(evidence=tuple((event.user, exercise, t_us, event_id) for exercise in pair.explains))
    return watermark_us, changed, outcome
