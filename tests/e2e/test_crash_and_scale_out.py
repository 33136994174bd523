"""Crash and scale-out: kill -9 and restart; two workers share the partitions and one
leaves mid-stream. Both go through rebalances in which faust-streaming 0.15.3 skips or
stalls records; the learner agent's ledger and watchdog (xpbank.continuity) make the
facts still equal `xpbank simulate`'s, and the read models the sums of those facts.

Each test asserts that its fault hit the scenario it names: the worker still had
uncommitted records when it was killed or stopped, and the other worker took over its
partitions."""

from __future__ import annotations

import time

import pytest

from tests.conftest import xpbank
from tests.e2e.harness import Worker, committed, lag, members, produce, until_working, wait_caught_up
from tests.e2e.test_failures import assert_matches_simulate, chunks
from tests.e2e.test_parity_and_replay import classroom_log
from tests.e2e.test_read_models_api import served, sums_of_current_facts, wait_projected

pytestmark = pytest.mark.e2e


def test_two_workers_share_partitions_and_survive_one_leaving(env, settings, tmp_path):
    lines = classroom_log(learners=16, seed=31)
    first, rest = chunks(lines, 4)[0], [line for chunk in chunks(lines, 4)[1:] for line in chunk]
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, first)
    a, b = Worker(env, "a", tmp_path).start(), Worker(env, "b", tmp_path).start()
    try:
        wait_caught_up(settings)
        shared = members(settings)
        assert len(shared) == 2 and all(shared), f"both workers hold learner partitions: {shared}"
        before = committed(settings)
        produce(env, rest)
        until_working(settings, before)
        b.stop()  # leaves mid-stream; a takes over its partitions
        left = lag(settings)
        assert left > 0, "b left with no record outstanding: the scenario did not happen"
        started = time.monotonic()
        wait_caught_up(settings)
        print(f"scale-out: {left} records outstanding when b left; a caught up in {time.monotonic() - started:.1f}s")
        [alone] = members(settings)
        assert alone == shared[0] | shared[1], "a took over every partition b held"
        assert a.alive()
        assert_matches_simulate(settings, lines)
    finally:
        a.stop()
        b.stop()


def test_kill_9_mid_stream_loses_nothing_and_duplicates_no_fact(env, settings, tmp_path):
    lines = classroom_log(learners=16, seed=23)
    first, rest = chunks(lines, 4)[0], [line for chunk in chunks(lines, 4)[1:] for line in chunk]
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, first)
    worker = Worker(env, "w", tmp_path).start()
    try:
        wait_caught_up(settings)
        before = committed(settings)
        produce(env, rest)
        until_working(settings, before)
        worker.kill9()
        in_flight = lag(settings)
        assert in_flight > 0, "the worker was killed with nothing outstanding: the scenario did not happen"
        started = time.monotonic()
        worker.start()
        wait_caught_up(settings)
        print(f"crash: killed with {in_flight} records uncommitted; recovered in {time.monotonic() - started:.1f}s")
        assert_matches_simulate(settings, lines)
        wait_projected(settings)  # whatever was published twice, the read models sum the current facts
        totals = sums_of_current_facts(settings)
        assert totals and served(worker, totals) == totals
    finally:
        worker.stop()
