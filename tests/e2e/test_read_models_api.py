"""The worker's projector and HTTP API: the read models equal the sums over the current
facts after redelivery, a replay with a new generation, a kill -9, and a rebuild from
an empty Redis; attempts and explanations over HTTP match the offline CLI, and the
second oracle (tests/oracle/): its attempt views and what each mastery banked."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import orjson
import pytest

from tests.conftest import xpbank
from tests.e2e.harness import (
    Worker, current, expected_with_oracle, get, get_json, produce, topic_values, wait_caught_up, wait_group,
)
from tests.oracle import views
from tests.e2e.test_parity_and_replay import classroom_log
from xpbank.core.explain import explain_banking
from tests.attempt_views import attempt_view
from xpbank.kafka.clients import read_topic
from xpbank.read.projector import projected_topics, projector_group
from xpbank.read.read_models import ReadModels

pytestmark = pytest.mark.e2e


def wait_projected(settings, timeout: float = 60, stable: int = 2) -> None:
    wait_group(settings, projector_group(settings), projected_topics(settings), timeout, stable, interval=0.5)


def sums_of_current_facts(settings) -> dict[str, dict]:
    """GET /users/{user}/xp as it must read, from the facts topic itself."""
    views: dict[str, dict] = {}
    for fact in current(topic_values(settings, "xp.facts.v1")).values():
        view = views.setdefault(fact["userSourcedId"], {"userSourcedId": fact["userSourcedId"], "totalXp": 0, "byDate": defaultdict(int)})
        view["totalXp"] += fact["xp"]
        view["byDate"][fact["date"]] += fact["xp"]
    return {u: v | {"byDate": {d: xp for d, xp in sorted(v["byDate"].items()) if xp}} for u, v in views.items()}


def served(worker: Worker, users) -> dict[str, dict]:
    answers = {u: get_json(worker, f"/users/{u}/xp") for u in users}
    assert {status for status, _ in answers.values()} == {200}
    return {u: body for u, (_, body) in answers.items()}


def redeliver_facts(env, settings) -> None:
    async def lines():
        return [{"topic": "xp.facts.v1", "key": m.key.decode(), "raw": m.value.decode()}
                async for m in read_topic(settings, settings.topic_prefix + "xp.facts.v1")]
    produce(env, asyncio.run(lines()))


def test_api_serves_read_models_attempts_and_explain_through_redelivery_replay_and_rebuild(env, settings, tmp_path):
    lines = classroom_log(learners=6, seed=13)
    want, simulator, _, oracle = expected_with_oracle(lines, settings)
    log_file = tmp_path / "classroom.jsonl"
    log_file.write_bytes(b"\n".join(orjson.dumps(l) for l in lines))
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, lines)
    worker = Worker(env, "w1", tmp_path).start()
    try:
        wait_caught_up(settings)
        wait_projected(settings)
        totals = sums_of_current_facts(settings)
        assert sum(v["totalXp"] for v in totals.values()) == sum(f["xp"] for f in want.values()) > 0
        assert served(worker, totals) == totals
        assert {u: v["totalXp"] for u, v in served(worker, totals).items()} == views.xp_by_user(oracle)

        status, health = get_json(worker, "/healthz")
        assert (status, health["ready"]) == (200, True)
        assert get(worker, "/healthz", token=None)[0] == 200  # the one route open to anyone
        for path in ("/users/learner-000/xp", "/users/learner-000/exercises/exercise-1-1/explain", "/metrics"):
            for token in (None, "not-a-token"):
                status, body = get(worker, path, token=token)
                assert status == 401 and orjson.loads(body)["title"] == "Unauthorized", (path, token)
        status, metrics = get(worker, "/metrics")
        samples = dict(line.rsplit(" ", 1) for line in metrics.decode().splitlines() if not line.startswith("#"))
        assert float(samples['xpbank_records_in_total{topic="learning.submissions.v1"}']) == sum(
            1 for l in lines if l["topic"] == "learning.submissions.v1")
        assert float(samples['xpbank_dead_letters_total{reason="malformed_json"}']) == simulator.counts["dead_letters:malformed_json"]
        assert float(samples['xpbank_table_keys{table="attempts"}']) == len(simulator.store.attempt_states)

        for (user, exercise), state in simulator.store.attempt_states.items():
            assert get_json(worker, f"/users/{user}/exercises/{exercise}/attempt") == attempt_view(user, exercise, state)
        assert get_json(worker, "/users/nobody/exercises/ex1/attempt")[0] == 404
        for user, exercise in sorted(oracle.exercises):  # the same views from the second oracle's attempt pointer
            assert get_json(worker, f"/users/{user}/exercises/{exercise}/attempt") == views.attempt_view(
                oracle, user, exercise), (user, exercise)

        masteries = sorted(simulator.store.masteries)
        assert masteries and set(masteries) == set(oracle.masteries)
        for user, exercise in sorted(oracle.masteries):  # what each mastery banked, from the second oracle
            status, over_http = get_json(worker, f"/users/{user}/exercises/{exercise}/explain")
            banked = views.banking(oracle, user, exercise)
            awarded = {r["resourceSourcedId"]: {"activeSeconds": r["activeSeconds"], "minutes": r["minutes"],
                                                "xp": r["decision"]} for r in over_http["resources"] if r["reason"] == "awarded"}
            assert (status, over_http["masteryEventId"], over_http["decidedAt"], awarded) == (
                200, banked["masteryEventId"], banked["decidedAt"], banked["awarded"]), (user, exercise)
        store = simulator.store
        for key in masteries:  # the evidence in Redis is what the final state explains
            user, exercise = key
            ref = store.mastery(user, exercise)
            pairs = store.pairs_of(user)
            want_explained = explain_banking(user, exercise, ref, store.course(ref.courseSourcedId), pairs)
            status, over_http = get_json(worker, f"/users/{user}/exercises/{exercise}/explain")
            assert (status, over_http) == (200, want_explained.model_dump(mode="json")), key
        for user, exercise in masteries[:2]:  # and the command line says the same, offline and asking the API
            offline = xpbank(env, "explain", user, exercise, "--log", str(log_file), "--json")
            assert offline.returncode == 0, offline.stderr.decode()
            asked = xpbank(worker.env, "explain", user, exercise, "--json")
            assert orjson.loads(asked.stdout) == orjson.loads(offline.stdout) == get_json(
                worker, f"/users/{user}/exercises/{exercise}/explain")[1]

        redeliver_facts(env, settings)  # every fact published once more
        wait_projected(settings)
        assert served(worker, totals) == totals

        replay = xpbank(env | {"XPBANK_DATA_DIR": str(tmp_path / "replay")}, "replay", "--generation", "2", timeout=300)
        assert replay.returncode == 0, replay.stderr.decode()[-2000:]
        wait_projected(settings)
        assert {f["generation"] for f in current(topic_values(settings, "xp.facts.v1")).values()} == {2}
        replayed = sums_of_current_facts(settings)
        assert served(worker, replayed) == replayed == totals
    finally:
        worker.stop()
    assert "Traceback" not in worker.log()

    rebuilt = xpbank(env, "projections", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr.decode()
    assert b"rebuild:" in rebuilt.stderr and b"rebuilt the read models" in rebuilt.stdout
    assert b"deleted 0 keys" not in rebuilt.stderr
    assert read_models(settings, totals) == totals


def read_models(settings, users) -> dict[str, dict]:
    async def read():
        models = ReadModels.connect(settings)
        try:
            return {u: await models.user_xp(u) for u in users}
        finally:
            await models.close()
    return asyncio.run(read())
