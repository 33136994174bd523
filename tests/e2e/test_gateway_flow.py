"""End to end through the gateway: a classroom's heartbeats (in envelopes that mix
learners), submissions and course posted over HTTP are banked by a worker exactly as the
same records produced directly (`simulate` of them, which the worker equals: see
test_parity_and_replay.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.caliper_fixtures import V1P2
from tests.conftest import xpbank
from tests.e2e.harness import (
    Worker, conflicting_revisions, current, expected, topic_values, wait_caught_up, without_revision,
)
from tests.gateway_proc import TOKEN, Gateway
from xpbank.cli.classroom import classroom

pytestmark = pytest.mark.e2e

SENSOR = "https://classroom.example/sensor"


def requests_of(lines: list[dict], per_envelope: int = 4) -> list[tuple[str, str, object, list[dict]]]:
    """(method, path, body, the record lines a direct producer would send for it), in the
    classroom's arrival order: consecutive heartbeats share an envelope (several learners),
    consecutive submissions an array."""
    out: list = []
    batch: list[dict] = []
    kind = None

    def close() -> None:
        if not batch:
            return
        if kind == "caliper":
            sent = max(line["timestamp"] for line in batch)
            body = {"sensor": SENSOR, "sendTime": sent, "dataVersion": V1P2, "data": [l["value"] for l in batch]}
            out.append(("POST", "/caliper/v1p2", body,
                        [{"topic": "learning.caliper.v1", "key": SENSOR, "value": body, "timestamp": sent}]))
        else:
            out.append(("POST", "/v1/submissions", [l["value"] for l in batch],
                        [l | {"timestamp": l["value"]["eventTime"]} for l in batch]))
        batch.clear()

    for line in lines:
        if line["topic"] == "learning.curriculum.v1":
            close()
            out.append(("PUT", f"/v1/courses/{line['key']}", line["value"], [line]))
            continue
        if "raw" in line:  # a client's broken JSON: refused at the door (400), never a record
            close()
            out.append(("POST", "/caliper/v1p2", line["raw"].encode(), []))
            continue
        this = "caliper" if line["topic"] == "learning.caliper.v1" else "submissions"
        if this != kind or len(batch) >= per_envelope:
            close()
            kind = this
        batch.append(line)
    close()
    return out


def test_heartbeats_posted_to_the_gateway_are_banked_as_if_produced_directly(env, settings, tmp_path):
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)  # every sendTime before now
    lines = [a.line for a in classroom(learners=8, seed=23, start=start)]
    requests = requests_of(lines)
    direct = [line for *_, sent in requests for line in sent]
    want, simulator, outputs = expected(direct, settings)
    assert simulator.counts["dead_letters:schema_violation"] and any(len(r[2]["data"]) > 1 for r in requests
                                                                      if r[1] == "/caliper/v1p2" and isinstance(r[2], dict))
    assert xpbank(env, "topics", "create").returncode == 0
    gateway = Gateway(env, tmp_path).start()
    try:
        statuses = [gateway.post(path, body, method=method)[0] for method, path, body, _ in requests]
    finally:
        assert gateway.stop() == 0
    assert statuses == [400 if isinstance(body, bytes) else 200 for _, _, body, _ in requests]
    worker = Worker(env, "w", tmp_path).start()
    try:
        wait_caught_up(settings)
        facts = topic_values(settings, "xp.facts.v1")
        assert without_revision(current(facts)) == without_revision(want)
        assert any(f["kind"] == "banked" and f["xp"] > 0 for f in want.values())
        assert conflicting_revisions(facts) == {}
        letters = sorted((d["reason"], d["eventId"]) for d in topic_values(settings, "xp.dead-letters.v1"))
        assert letters == sorted((o.value.reason, o.value.eventId) for o in outputs if o.topic == "xp.dead-letters.v1")
    finally:
        worker.stop()
    assert "Traceback" not in worker.log() + gateway.log()
    records = topic_values(settings, "learning.caliper.v1")
    assert all(len({e["actor"]["id"].rsplit("/", 1)[-1] for e in r["data"]}) == 1 for r in records)  # per learner


def test_the_demo_sends_its_classroom_through_the_gateway(env, settings, tmp_path):
    """`xpbank demo --via-gateway`: the same classroom, over HTTP, banked by the worker."""
    assert xpbank(env, "topics", "create").returncode == 0
    gateway = Gateway(env, tmp_path).start()
    worker = Worker(env, "w", tmp_path).start()
    try:
        demo = xpbank(env, "demo", "--learners", "3", "--speed", "600", "--seed", "5", "--via-gateway",
                      f"http://127.0.0.1:{gateway.port}", "--token", TOKEN, timeout=180)
        assert demo.returncode == 0, demo.stderr.decode()[-2000:]
        assert "sent through the gateway" in demo.stdout.decode() and "leaderboard" in demo.stdout.decode()
        wait_caught_up(settings)
    finally:
        worker.stop()
        gateway.stop()
    facts = current(topic_values(settings, "xp.facts.v1"))
    assert {f["kind"] for f in facts.values()} == {"exercise", "banked"}
    assert {f["userSourcedId"] for f in facts.values()} == {"learner-000", "learner-001", "learner-002"}
    answered = gateway.log().count('"status":200')
    assert answered > 50 and TOKEN not in gateway.log()
