"""Any API process answers for any learner: two workers sharing the partitions and an
`xpbank api` process of its own give the same answers (the read models are in Redis),
and they equal what the decisions' state says."""

from __future__ import annotations

import pytest

from tests.conftest import xpbank
from tests.e2e.harness import (
    Worker, eventually, expected, free_port, get, get_json, get_or_none, members, produce, wait_caught_up,
)
from tests.e2e.test_parity_and_replay import classroom_log
from tests.e2e.test_read_models_api import wait_projected
from tests.attempt_views import attempt_view

pytestmark = pytest.mark.e2e


def test_every_api_process_answers_for_every_learner(env, settings, tmp_path):
    lines = classroom_log(learners=6, seed=21)
    _, simulator, _ = expected(lines, settings)
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, lines)
    a, b = Worker(env, "a", tmp_path).start(), Worker(env, "b", tmp_path).start()
    api = Worker(env | {"XPBANK_WEB_PORT": str(free_port())}, "api", tmp_path, "api").start()
    try:
        wait_caught_up(settings, timeout=120)

        def all_ready() -> None:
            assert (get_or_none(a, "/healthz"), get_or_none(b, "/healthz"), get_or_none(api, "/healthz")) == (200,) * 3
        eventually(all_ready, timeout=60, every=0.5)
        shared = members(settings)
        assert len(shared) == 2 and all(shared), f"the partitions are split between the two workers: {shared}"
        wait_projected(settings)
        paths = [f"/users/{u}/exercises/{e}/{what}" for u, e in simulator.store.attempt_states
                 for what in ("attempt", "explain")] + ["/users/learner-001/xp"]
        answers = [{path: get_json(process, path) for path in paths} for process in (a, b, api)]
        assert answers[0] == answers[1] == answers[2]
        for (user, exercise), state in simulator.store.attempt_states.items():
            assert answers[2][f"/users/{user}/exercises/{exercise}/attempt"] == attempt_view(user, exercise, state)
        assert get(api, "/users/learner-001/xp", token=None)[0] == 401
    finally:
        for process in (a, b, api):
            process.stop()
