"""Why a mastery banked what it banked (SPEC §3.4), computed from the same state the
decision used. Shared by `xpbank explain` and the HTTP API."""

from __future__ import annotations

from collections.abc import Mapping

from xpbank.core.banking import MasteryRef, PairState, award_for
from xpbank.core.curriculum import anomaly, banking_window, is_eligible
from xpbank.contract.times import format_time
from xpbank.contract.events import CourseUpserted
from xpbank.contract.outputs import ExplainedResource, Explanation


def explain_banking(
    user: str,
    exercise: str,
    mastery: MasteryRef | None,
    course: CourseUpserted | None,
    pairs: Mapping[str, PairState],
) -> Explanation:
    def empty(note: str) -> Explanation:
        return Explanation(
            userSourcedId=user, exerciseSourcedId=exercise, masteryEventId=mastery.id if mastery else None,
            decidedAt=mastery.eventTime if mastery else None, windowStartsAfter=None, resources=(), anomalies=(),
            note=note,
        )

    if mastery is None:
        return empty("no mastery of this exercise by this user has been processed")
    window = banking_window(course, exercise) if course is not None else None
    if window is None:
        return empty("the exercise is not in the curriculum of the mastery's course")
    rows = []
    for placed in window.between:
        res = placed.resource
        pair = pairs.get(res.sourcedId, PairState())
        decision = pair.decision
        by_this = decision is not None and decision.mastery_event_id == mastery.id
        prior = decision.xp if decision is not None and not by_this else 0
        credited, minutes, _ = award_for(pair.entries, mastery.eventTime, 0)
        kind, cap, award = res.kind, res.xp or 0, 0
        if by_this:  # what this mastery decided, against the course as it was then
            kind, cap, award = decision.resource_kind, decision.expected_xp, decision.xp
            reason = "awarded" if award > 0 else "below 20 s"
        elif res.kind not in ("Article", "Video"):
            reason = "not passive"
        elif not is_eligible(res):
            reason = "zero xp"
        elif prior > 0:
            reason = "already banked"
        else:  # eligible now, but not when this mastery decided (the course changed since)
            reason = "not decided"
        rows.append(
            ExplainedResource(
                resourceSourcedId=res.sourcedId, kind=kind, cap=cap, activeSeconds=credited / 1000,
                minutes=minutes, priorAward=prior, decision=award, reason=reason,
            )
        )
    return Explanation(
        userSourcedId=user,
        exerciseSourcedId=exercise,
        masteryEventId=mastery.id,
        decidedAt=mastery.eventTime,
        windowStartsAfter=window.previous.resource.sourcedId if window.previous else None,
        resources=tuple(rows),
        anomalies=tuple(a for p in window.between if (a := anomaly(p.resource))),
    )


def render(explanation: Explanation) -> str:
    e = explanation
    lines = [f"banking for user {e.userSourcedId}, exercise {e.exerciseSourcedId}"]
    if e.note:
        return "\n".join([*lines, f"  {e.note}"])
    start = f"after exercise {e.windowStartsAfter}" if e.windowStartsAfter else "at the start of the unit"
    lines += [f"  mastery {e.masteryEventId} at T = {format_time(e.decidedAt)}", f"  window: starts {start}"]
    lines.append(f"  {'resource':<24} {'kind':<9} {'seconds<=T':>10} {'minutes':>7} {'cap':>4} {'prior':>5} {'xp':>3}  reason")
    for r in e.resources:
        lines.append(
            f"  {r.resourceSourcedId:<24} {r.kind:<9} {r.activeSeconds:>10.1f} {r.minutes:>7} {r.cap:>4}"
            f" {r.priorAward:>5} {r.decision:>3}  {r.reason}"
        )
    if not e.resources:
        lines.append("  (no resources between the previous exercise and this one)")
    lines.append(f"  banked by this mastery: {e.total} xp")
    lines += [f"  anomaly: {a}" for a in e.anomalies]
    return "\n".join(lines)
