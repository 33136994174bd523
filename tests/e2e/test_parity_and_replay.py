"""The worker on the real broker makes exactly the decisions `xpbank simulate` makes."""

from __future__ import annotations

import time

import orjson
import pytest

from tests.e2e.harness import (
    Worker, conflicting_revisions, current, dead_letters, expected, metrics, produce, simulated_dead_letters,
    topic_values, wait_caught_up, without_revision,
)
from tests.conftest import both_engines, xpbank
from xpbank.cli.classroom import classroom

pytestmark = pytest.mark.e2e


def classroom_log(learners: int, seed: int, rekey_every: int = 4, start=None) -> list[dict]:
    """A classroom where every `rekey_every`-th learner's client keys records by device,
    so those records must be re-keyed onto the learner's partition."""
    lines = []
    for arrival in classroom(learners=learners, seed=seed, start=start):
        line = dict(arrival.line)
        key = line.get("key") or ""
        if line["topic"] != "learning.curriculum.v1" and key.startswith("learner-") and int(key[-3:]) % rekey_every == 0:
            line["key"] = f"device-of-{key}"
        lines.append(line)
    return lines


@both_engines
def test_parity_with_simulate_then_replay_reproduces_every_fact(env, settings, tmp_path):
    lines = classroom_log(learners=12, seed=11)
    want, simulator, sim_outputs = expected(lines, settings)
    assert len(lines) > 500 and simulator.counts["dead_letters:malformed_json"] and any(l["key"].startswith("device") for l in lines)
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, lines)
    started = time.monotonic()
    worker = Worker(env, "w1", tmp_path).start()
    try:
        wait_caught_up(settings)
        print(f"parity: {len(lines)} records processed in {time.monotonic() - started:.1f}s")
        facts = topic_values(settings, "xp.facts.v1")
        assert without_revision(current(facts)) == without_revision(want)
        assert conflicting_revisions(facts) == {}
        attempts = {a["id"]: a for a in topic_values(settings, "xp.attempts.v1")}
        want_attempts = {o.value.id: o.value.model_dump(mode="json") for o in sim_outputs if o.topic == "xp.attempts.v1"}
        assert attempts == want_attempts
        assert dead_letters(settings) == simulated_dead_letters(sim_outputs)
        counted, awards = metrics(worker), {a["id"]: a for a in topic_values(settings, "xp.banked.v1")}
        assert counted["xpbank_awards_total"] == sum(1 for a in awards.values() if a["revision"] == 1) > 0
        assert counted["xpbank_award_revisions_total"] == sum(1 for a in awards.values() if a["revision"] > 1)
    finally:
        worker.stop()
    assert "Traceback" not in worker.log()

    started = time.monotonic()
    replay = xpbank(env | {"XPBANK_DATA_DIR": str(tmp_path / "replay")}, "replay", "--generation", "2", timeout=300)
    assert replay.returncode == 0, replay.stderr.decode()[-2000:]
    assert b"caught up" in replay.stderr
    print(f"replay: {time.monotonic() - started:.1f}s")
    facts = topic_values(settings, "xp.facts.v1")
    replayed = current(facts)
    assert {f["generation"] for f in replayed.values()} == {2}
    assert {fid: f["xp"] for fid, f in replayed.items()} == {fid: f["xp"] for fid, f in want.items()}
    assert conflicting_revisions(facts) == {}
    summed = orjson.loads(b"[" + b",".join(xpbank(env, "facts").stdout.splitlines()) + b"]")
    assert sum(f["xp"] for f in summed) == sum(f["xp"] for f in want.values())
