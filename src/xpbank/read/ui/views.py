"""The web page's content as pure functions: per-minute counts over a bounded window,
the items of the newest awards and dead letters (payload previews made safe to show as
text), an engine's status snapshot, and the overview document the page renders."""

from __future__ import annotations

import unicodedata
from collections import Counter, deque
from collections.abc import Iterable, Mapping

from xpbank.contract.outputs import REASONS

WINDOW_MINUTES = 60
PREVIEW_CHARS = 240


class MinuteCounts:
    """Counts per (minute, name) over the last `window` minutes. At most `window` + 1
    minutes are held: older ones are dropped as time goes on, so memory stays bounded
    whatever the traffic."""

    def __init__(self, window: int = WINDOW_MINUTES) -> None:
        self.window = window
        self.minutes: deque[tuple[int, Counter]] = deque()  # (minute since the epoch, counts), oldest first

    def add(self, moment: float, name: str, now: float, n: int = 1) -> None:
        """Count `n` of `name` at `moment` (seconds since the epoch), clamped into the
        window that ends at `now`."""
        newest = int(now // 60)
        minute = min(max(int(moment // 60), newest - self.window + 1), newest)
        self._drop(newest)
        for held, counts in reversed(self.minutes):  # arrivals are mostly in the newest minute
            if held == minute:
                counts[name] += n
                return
            if held < minute:
                break
        self.minutes.append((minute, Counter({name: n})))
        if len(self.minutes) > 1 and self.minutes[-2][0] > minute:  # a late one: keep the order
            self.minutes = deque(sorted(self.minutes, key=lambda item: item[0]))

    def _drop(self, newest: int) -> None:
        while self.minutes and self.minutes[0][0] <= newest - self.window:
            self.minutes.popleft()

    def series(self, names: Iterable[str], now: float) -> dict:
        """Per name the counts of each of the `window` minutes ending at `now` (oldest
        first, zeros included), with the first minute's start (seconds since the epoch)."""
        newest = int(now // 60)
        self._drop(newest)
        held = dict(self.minutes)
        first = newest - self.window + 1
        return {"start": first * 60, "minutes": self.window,
                **{name: [held.get(m, Counter())[name] for m in range(first, newest + 1)] for name in names}}

    def totals(self, now: float) -> Counter:
        self._drop(int(now // 60))
        total: Counter = Counter()
        for _, counts in self.minutes:
            total.update(counts)
        return total


def preview(text: str | None, limit: int = PREVIEW_CHARS) -> str:
    """A payload or detail as plain text for the page: invisible characters (controls but
    tab and newline, bidi overrides, zero-width ones, separators) shown as \\xNN or
    \\uNNNN, cut to `limit` characters with an ellipsis. The page still puts it in a text
    node: this keeps terminal escapes and NULs readable and a bidi override from
    reordering what follows; it is not HTML escaping (the browser's textContent is)."""
    if text is None:
        return ""
    shown = []
    for char in text[:limit]:
        if char in "\t\n" or unicodedata.category(char) not in HIDDEN:
            shown.append(char)
        else:
            code = ord(char)
            shown.append(f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}")
    return "".join(shown) + ("…" if len(text) > limit else "")


# control, format (bidi overrides, zero-width), line and paragraph separators, surrogates, private use
HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co"})


def award_item(value: Mapping, at: float) -> dict:
    """A `BankedXpAwarded` record as a row of the newest awards."""
    return {"at": at, "user": str(value.get("userSourcedId", "")), "resource": str(value.get("resourceSourcedId", "")),
            "kind": str(value.get("resourceKind", "")), "exercise": str(value.get("exerciseSourcedId", "")),
            "xp": value.get("xp"), "deltaXp": value.get("deltaXp"), "revision": value.get("revision"),
            "eventTime": value.get("eventTime")}


def letter_item(value: Mapping, at: float) -> dict:
    """A `DeadLetter` record as a row of the latest dead letters (payload cut short)."""
    encoding = value.get("payloadEncoding") or "utf-8"
    return {"at": at, "reason": str(value.get("reason", "")), "topic": str(value.get("topic", "")),
            "partition": value.get("partition"), "offset": value.get("offset"), "key": preview(value.get("key"), 80),
            "eventId": preview(value.get("eventId"), 80), "detail": preview(value.get("detail")),
            "payload": preview(value.get("payload")), "payloadEncoding": str(encoding)}


def engine_status(engine: str, instance: str | None, recovered: bool, rebalancing: bool, curriculum_loaded: bool,
                  counts: Mapping[str, int]) -> dict:
    """What a worker says about itself on the page: readiness (as /healthz), and the
    repairs of the continuity layer (docs/architecture.md) with its other counters."""

    def total(prefix: str) -> int:
        return sum(v for k, v in counts.items() if k.startswith(prefix))

    return {"engine": engine, "instance": instance or None,
            "ready": recovered and not rebalancing and curriculum_loaded, "tablesRecovered": recovered,
            "rebalancing": rebalancing, "curriculumLoaded": curriculum_loaded,
            "refetched": counts.get("refetched", 0), "stallRestarts": counts.get("stall_restarts", 0),
            "redelivered": counts.get("redelivered", 0), "projectorRestarts": counts.get("projector_errors", 0),
            "recordsIn": total("records_in:"), "recordsOut": total("records_out:")}


def lag_rows(rows: Iterable) -> dict:
    """Partition lag rows (kafka.admin.PartitionLag) as the page's table and totals."""
    listed = [{"topic": r.topic, "partition": r.partition, "start": r.start, "end": r.end, "committed": r.committed,
               "lag": r.lag} for r in rows]
    per_topic: dict[str, int] = {}
    for row in listed:
        per_topic[row["topic"]] = per_topic.get(row["topic"], 0) + row["lag"]
    return {"total": sum(per_topic.values()), "perTopic": per_topic, "partitions": listed}


def sink_row(sink: str, group: str, state: str, members: int, lag: dict) -> dict:
    """A write-back sink on the overview, from its consumer group as the broker knows it
    (the sinks run as processes of their own): running (members), stopped (offsets
    committed, no member) or never run; and its lag on the facts."""
    committed = any(row["committed"] is not None for row in lag["partitions"])
    status = "running" if members else "stopped" if committed else "never run"
    return {"sink": sink, "group": group, "state": state, "members": members, "status": status, "lag": lag["total"]}


def letters_by_reason(totals: Mapping[str, int]) -> dict[str, int]:
    """Dead letters per reason, every reason listed (zeros too), in the contract's order."""
    return {reason: totals.get(f"dead:{reason}", 0) for reason in REASONS}


def explained_rows(explanation: Mapping) -> list[list[str]]:
    """An explanation's resources as the rows of `xpbank explain`'s table, formatted as it
    prints them: resource, kind, seconds up to T, minutes, cap, prior, xp, reason."""
    return [[str(r["resourceSourcedId"]), str(r["kind"]), f"{r['activeSeconds']:.1f}", str(r["minutes"]), str(r["cap"]),
             str(r["priorAward"]), str(r["decision"]), str(r["reason"])] for r in explanation.get("resources", ())]
