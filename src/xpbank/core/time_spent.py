"""Accepting TimeSpent events for one user (SPEC §3.1, §3.4.6, §3.6 lateness).

Takes the user's watermark and a view of the user's pairs by resource (read once per
resource: the events' changes are kept in the result), and returns the pairs it
changed, so the shell writes each touched pair once per record, however many events it
has. The loop runs once per heartbeat, so it keeps its tallies in locals and builds one
Outcome at the end."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from xpbank.contract.heartbeats import Heartbeat
from xpbank.contract.times import format_time, from_micros
from xpbank.core.banking import EMPTY_PAIR, PairState, redecide
from xpbank.core.outcome import Outcome, Rejection, accepted_only
from xpbank.core.read_time import credit, entry, entry_id, has_event, with_entry
from xpbank.core.rules import Rules


class PairsView(Protocol):
    """A learner's pairs by resource, read only (a dict, or a store's view)."""

    def get(self, resource: str, default: PairState, /) -> PairState: ...


def record_time_spent(
    watermark_us: int | None,
    pairs: PairsView,
    beats: Iterable[Heartbeat],
    rules: Rules,
    user: str,
) -> tuple[int | None, dict[str, PairState], Outcome]:
    """The heartbeats of `user`; returns the new watermark, the changed pairs by
    resource, and the outcome."""
    changed: dict[str, PairState] = {}
    outputs: tuple = ()
    rejections: tuple[Rejection, ...] = ()
    evidence: tuple[tuple[str, str, int, str], ...] = ()
    lateness_us, unanchored_ms = rules.lateness_seconds * 1_000_000, rules.max_unanchored_seconds * 1000
    accepted = duplicates = clamped_ms = late = 0
    for event_id, _, resource, t_us, active, key in beats:
        if watermark_us is not None and t_us < watermark_us - lateness_us:
            horizon = format_time(from_micros(watermark_us - lateness_us))
            rejections += (Rejection("too_late", f"eventTime is before the lateness horizon {horizon}", event_id),)
            continue
        pair = changed.get(resource) or pairs.get(resource, EMPTY_PAIR)
        entries, decision, explains = pair
        if entries and entries.find(key) != -1 and has_event(entries, key):
            # accepted before, so already in the watermark - unless a crash lost that write
            if watermark_us is None or t_us > watermark_us:
                watermark_us = t_us
            duplicates += 1
            continue
        credited, clamped = credit(active, unanchored_ms)
        clamped_ms += clamped
        pair = new_tuple(PairState, (with_entry(entries, entry(t_us, credited, key)), decision, explains))
        if decision is not None and t_us <= decision.decided_us:
            late += 1
            pair, awarded = redecide(pair, user, resource, rules)
            outputs += awarded.outputs
        changed[resource] = pair
        if watermark_us is None or t_us > watermark_us:
            watermark_us = t_us
        accepted += 1
        if explains:
            evidence += tuple((user, exercise, t_us, entry_id(event_id)) for exercise in explains)
    if not (duplicates or rejections or clamped_ms or late or evidence):  # the usual outcome: shared
        return watermark_us, changed, accepted_only(accepted)
    counts = (("time_spent_accepted", accepted),) if accepted else ()
    if duplicates:
        counts += (("duplicates", duplicates),)
    if clamped_ms:
        counts += (("clamped_ms", clamped_ms),)
    if late:
        counts += (("late_events", late),)
    return watermark_us, changed, new_tuple(Outcome, (outputs, rejections, counts, evidence))


new_tuple = tuple.__new__  # PairState(...), Outcome(...) without their Python-level __new__: per heartbeat
