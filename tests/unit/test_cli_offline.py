"""`xpbank simulate` and `xpbank explain` from the command line on a hand-written log."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / "examples" / "seed002.jsonl"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xpbank.cli.main", *args], capture_output=True, text=True, cwd=ROOT, check=False)


def test_simulate_prints_output_records_as_jsonl():
    result = run("simulate", str(LOG))
    assert result.returncode == 0, result.stderr
    records = [orjson.loads(line) for line in result.stdout.splitlines()]
    facts = {r["value"]["factId"]: r["value"]["xp"] for r in records if r["topic"] == "xp.facts.v1"}
    assert facts == {"exercise:u1:ex1:1": 3, "bank:u1:v1": 5, "bank:u1:a1": 1}
    letters = [(r["value"]["reason"], r["value"]["offset"]) for r in records if r["topic"] == "xp.dead-letters.v1"]
    assert letters == [("stale_attempt", 7), ("malformed_json", 8)]
    assert all(set(r) == {"topic", "key", "value", "timestamp"} for r in records)


def test_explain_shows_window_seconds_minutes_cap_decision_and_anomalies():
    result = run("explain", "u1", "ex1", "--log", str(LOG))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "T = 2026-11-21T10:08:30.000Z" in text and "starts at the start of the unit" in text
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.strip().startswith(("v1 ", "a1 "))}
    assert rows["v1"][1:7] == ["Video", "300.0", "5", "5", "0", "5"] and rows["v1"][-1] == "awarded"
    assert rows["a1"][1:7] == ["Article", "60.0", "1", "1", "0", "1"]
    assert "banked by this mastery: 6 xp" in text
    assert "anomaly: Article a1" in text
    as_json = orjson.loads(run("explain", "u1", "ex1", "--log", str(LOG), "--json").stdout)
    assert [(r["resourceSourcedId"], r["reason"], r["decision"]) for r in as_json["resources"]] == [("v1", "awarded", 5), ("a1", "awarded", 1)]


def test_explain_reasons_for_resources_not_awarded(tmp_path):
    from tests.builders import course, heartbeat, mastery, resource, to_bytes

    lines = [
        course("c1", [[resource("v0", 1, "Video", 5), resource("ex0", 2, "Exercise", 2)],
                      [resource("q1", 1, "Quiz", 3), resource("a0", 2, "Article", 0), resource("v1", 3, "Video", 3),
                       resource("a1", 4, "Article", 2), resource("ex1", 5, "Exercise", 2)]]),
        heartbeat("u1", "v1", 10, 100),
        heartbeat("u1", "a1", 120, 110),
        mastery("u1", "ex0", 150, mid="urn:uuid:00000000-0000-4000-8000-0000000000c1"),
        mastery("u1", "ex1", 200, mid="urn:uuid:00000000-0000-4000-8000-0000000000c2"),
    ]
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"\n".join(to_bytes(lines)))
    explained = orjson.loads(run("explain", "u1", "ex1", "--log", str(log), "--json").stdout)
    assert explained["windowStartsAfter"] == "ex0"
    assert {r["resourceSourcedId"]: r["reason"] for r in explained["resources"]} == {
        "q1": "not passive", "a0": "zero xp", "v1": "below 20 s", "a1": "awarded"}
    assert run("explain", "u9", "ex1", "--log", str(log)).stdout.strip().endswith("no mastery of this exercise by this user has been processed")


def test_simulate_summary_counts_accepted_time_spent_on_lines_of_its_own():
    merged = subprocess.run(f"{sys.executable} -m xpbank.cli.main simulate --summary {LOG} 2>&1", shell=True,
                            capture_output=True, text=True, cwd=ROOT, check=True).stdout.splitlines()
    at = merged.index("summary:")
    outputs = [orjson.loads(line) for line in merged[:at] if line]  # every output line whole
    assert outputs and all(set(o) == {"topic", "key", "value", "timestamp"} for o in outputs)
    counts = dict(line.strip().split(": ") for line in merged[at + 1:])
    heartbeats = LOG.read_text().count('"type":"TimeSpentEvent"')  # all valid, in one envelope
    assert int(counts["time_spent_accepted"]) == heartbeats > 0
    assert counts["dead_letters:stale_attempt"] == "1"
