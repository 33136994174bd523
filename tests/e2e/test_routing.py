"""Requests routed to the worker that owns the learner (Faust `table_route`), with two
workers sharing the partitions."""

from __future__ import annotations

import pytest

from tests.conftest import xpbank
from tests.e2e.harness import Worker, eventually, expected, get_json, get_or_none, members, produce, wait_caught_up
from tests.e2e.test_parity_and_replay import classroom_log

pytestmark = pytest.mark.e2e


def test_attempt_and_explain_are_routed_to_the_worker_that_owns_the_learner(env, settings, tmp_path):
    """Two workers split the partitions; asking either one gives the owner's answer."""
    lines = classroom_log(learners=6, seed=21)
    _, simulator, _ = expected(lines, settings)
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, lines)
    a, b = Worker(env, "a", tmp_path).start(), Worker(env, "b", tmp_path).start()
    try:
        wait_caught_up(settings, timeout=120)

        def both_ready() -> None:
            assert (get_or_none(a, "/healthz"), get_or_none(b, "/healthz")) == (200, 200)
        eventually(both_ready, timeout=60, every=0.5)
        shared = members(settings)
        assert len(shared) == 2 and all(shared), f"the partitions are split between the two workers: {shared}"
        paths = [f"/users/{u}/exercises/{e}/{what}" for u, e in (k.split("\x1f") for k in simulator.store.attempt_states)
                 for what in ("attempt", "explain")]
        from_a = {path: get_json(a, path) for path in paths}
        from_b = {path: get_json(b, path) for path in paths}
        assert from_a == from_b
        assert {status for status, _ in from_a.values()} == {200}
    finally:
        a.stop()
        b.stop()
