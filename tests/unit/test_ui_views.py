"""The web page's pure parts: per-minute counts over a bounded hour, the newest items,
payload previews, the explain rows as `xpbank explain` prints them, the learner view
and an engine's status."""

from __future__ import annotations

from collections import Counter

from tests.unit.test_projection import seed002
from xpbank.contract.outputs import REASONS, BankingDecided
from xpbank.core.explain import render
from xpbank.read.projection import learner_view
from xpbank.read.ui.live import Newest
from xpbank.read.ui.views import (
    MinuteCounts, award_item, engine_status, explained_rows, lag_rows, letter_item, letters_by_reason, preview, sink_row,
)

T0 = 1_800_000_000.0  # a minute boundary (divisible by 60)


def test_counts_land_in_their_minute_and_the_series_covers_the_last_hour_oldest_first():
    counts = MinuteCounts(window=60)
    now = T0 + 59 * 60 + 30  # half a minute into the 60th minute
    counts.add(T0 + 5, "awards", now)  # the window's first minute
    counts.add(T0 + 59 * 60 + 1, "awards", now, n=3)  # the current minute
    counts.add(T0 + 59 * 60 + 2, "facts", now)
    series = counts.series(("awards", "facts"), now)
    assert series["start"] == T0 and series["minutes"] == 60
    assert len(series["awards"]) == 60 and series["awards"][0] == 1 and series["awards"][-1] == 3
    assert series["facts"] == [0] * 59 + [1]
    assert counts.totals(now) == Counter({"awards": 4, "facts": 1})


def test_moments_outside_the_window_are_clamped_into_it():
    counts = MinuteCounts(window=60)
    now = T0 + 3600
    counts.add(T0 - 86400, "awards", now)  # a day old (a backfill read while catching up): the oldest minute
    counts.add(now + 600, "awards", now)  # from the future (a producer's clock): the current minute
    series = counts.series(("awards",), now)
    assert series["awards"][0] == 1 and series["awards"][-1] == 1 and sum(series["awards"]) == 2


def test_minutes_leave_the_window_as_time_goes_on_so_memory_stays_bounded():
    counts = MinuteCounts(window=60)
    for minute in range(600):  # ten hours of traffic, a record every minute
        counts.add(T0 + minute * 60, "facts", T0 + minute * 60)
        assert len(counts.minutes) <= 60
    assert counts.totals(T0 + 599 * 60)["facts"] == 60
    assert counts.totals(T0 + 700 * 60)["facts"] == 0  # an hour and more of silence: nothing left


def test_a_late_moment_keeps_the_minutes_in_order():
    counts = MinuteCounts(window=60)
    now = T0 + 30 * 60
    for offset in (20, 5, 25, 5):
        counts.add(T0 + offset * 60, "awards", now)
    assert [m for m, _ in counts.minutes] == sorted(m for m, _ in counts.minutes)
    assert counts.series(("awards",), now)["awards"][-26] == 2  # minute 5 (the window ends at minute 30)


def test_newest_keeps_the_n_latest_items_whatever_the_order_they_arrive_in():
    newest = Newest(3)
    for at in (5, 1, 9, 7, 3, 8):
        newest.add(at, {"at": at})
    assert [item["at"] for item in newest.items()] == [9, 8, 7]
    assert len(newest.heap) == 3


def test_previews_show_control_characters_and_cut_long_payloads_but_leave_markup_to_the_browser():
    assert preview("<script>alert(1)</script>") == "<script>alert(1)</script>"  # a text node shows it as text
    assert preview("a\x00b\x1b[31mc\td\ne\x7f") == "a\\x00b\\x1b[31mc\td\ne\\x7f"
    assert preview("\u202eevil\u2028x") == "\\u202eevil\\u2028x"  # bidi override and line separator: visible
    assert preview("x" * 300, limit=10) == "x" * 10 + "…"
    assert preview("é ü 日本") == "é ü 日本" and preview(None) == ""


def test_a_dead_letter_item_keeps_where_it_came_from_and_a_short_payload():
    letter = {"reason": "malformed_json", "detail": "Expected value\x00", "topic": "learning.caliper.v1", "partition": 2,
              "offset": 41, "key": "k", "timestamp": None, "eventId": None, "payload": "<b>" * 200,
              "payloadEncoding": "utf-8"}
    item = letter_item(letter, T0)
    assert item["topic"] == "learning.caliper.v1" and (item["partition"], item["offset"]) == (2, 41)
    assert item["detail"] == "Expected value\\x00" and item["payload"].endswith("…") and len(item["payload"]) == 241
    assert award_item({"userSourcedId": "u1", "resourceSourcedId": "v1", "xp": 3, "deltaXp": 3, "revision": 1}, T0)[
        "user"] == "u1"
    assert letters_by_reason(Counter({"dead:too_late": 2, "dead": 2})) == {r: (2 if r == "too_late" else 0) for r in REASONS}


def test_explain_rows_are_the_cells_xpbank_explain_prints():
    _, values = seed002()
    [decided] = [v for v in values if isinstance(v, BankingDecided)]
    explanation = decided.explanation()
    rows = explained_rows(explanation.model_dump(mode="json"))
    printed = [line.split() for line in render(explanation).splitlines()[4:4 + len(explanation.resources)]]
    assert rows and [row[:7] for row in rows] == [line[:7] for line in printed]
    assert [row[7] for row in rows] == [" ".join(line[7:]) for line in printed]


def test_the_learner_view_sorts_exercises_and_knows_an_unknown_learner():
    view = learner_view("u1", b"7", {b"2026-11-21": b"7"}, {b"v1": b"4"},
                        {"ex2": (None, b'{"status": "completed"}', None), "ex1": (b'{"status": "open"}', None, None)})
    assert view["known"] and view["xp"] == {"userSourcedId": "u1", "totalXp": 7, "byDate": {"2026-11-21": 7}}
    assert view["banked"] == {"v1": 4}
    assert [(r["exerciseSourcedId"], r["open"], r["completed"]) for r in view["exercises"]] == [
        ("ex1", {"status": "open"}, None), ("ex2", None, {"status": "completed"})]
    assert not learner_view("nobody", None, {}, {}, {})["known"]


def test_an_engine_status_says_ready_and_counts_the_continuity_repairs():
    counts = Counter({"refetched": 4, "stall_restarts": 1, "records_in:learning.caliper.v1": 10,
                      "records_in:learning.submissions.v1": 5, "records_out:xp.facts.v1": 3})
    status = engine_status("faust", "w1", True, False, True, counts)
    assert status["ready"] and (status["refetched"], status["stallRestarts"], status["redelivered"]) == (4, 1, 0)
    assert (status["recordsIn"], status["recordsOut"]) == (15, 3)
    assert not engine_status("quix", "", True, True, True, Counter())["ready"]


def test_a_sink_is_running_stopped_or_never_run_as_its_consumer_group_says():
    from xpbank.kafka.views import PartitionLag

    behind = lag_rows([PartitionLag("xp.facts.v1", 0, 0, 9, 4, 5), PartitionLag("xp.facts.v1", 1, 0, 3, None, 3)])
    never = lag_rows([PartitionLag("xp.facts.v1", 0, 0, 9, None, 9)])
    assert sink_row("caliper", "xpbank-sink-caliper", "Stable", 1, behind) == {
        "sink": "caliper", "group": "xpbank-sink-caliper", "state": "Stable", "members": 1, "status": "running", "lag": 8}
    assert sink_row("caliper", "g", "Empty", 0, behind)["status"] == "stopped"
    assert sink_row("oneroster", "g", "Dead", 0, never)["status"] == "never run"
