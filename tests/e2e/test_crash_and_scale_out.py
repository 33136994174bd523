"""Crash and scale-out: kill -9 and restart; two workers share the partitions and one
leaves mid-stream. Both go through rebalances in which faust-streaming 0.15.3 skips or
stalls records; the learner agent's ledger and watchdog (xpbank.continuity) make the
facts still equal `xpbank simulate`'s, and the read models the sums of those facts."""

from __future__ import annotations

import time

import pytest

from tests.conftest import xpbank
from tests.e2e.harness import Worker, produce, wait_caught_up
from tests.e2e.test_failures import assert_matches_simulate, chunks
from tests.e2e.test_parity_and_replay import classroom_log
from tests.e2e.test_read_models_api import served, sums_of_current_facts, wait_projected

pytestmark = pytest.mark.e2e


def test_two_workers_share_partitions_and_survive_one_leaving(env, settings, tmp_path):
    lines = classroom_log(learners=16, seed=31)
    first, second, third = chunks(lines, 3)
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, first)
    a, b = Worker(env, "a", tmp_path).start(), Worker(env, "b", tmp_path).start()
    try:
        wait_caught_up(settings)
        produce(env, second)
        time.sleep(1.0)
        b.stop()  # leaves mid-stream; a takes over its partitions
        produce(env, third)
        started = time.monotonic()
        wait_caught_up(settings)
        print(f"scale-out: remaining worker caught up in {time.monotonic() - started:.1f}s")
        assert a.alive()
        assert_matches_simulate(settings, lines)
    finally:
        a.stop()
        b.stop()


def test_kill_9_mid_stream_loses_nothing_and_duplicates_no_fact(env, settings, tmp_path):
    lines = classroom_log(learners=16, seed=23)
    first, second, third = chunks(lines, 3)
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, first)
    worker = Worker(env, "w", tmp_path).start()
    try:
        wait_caught_up(settings)
        produce(env, second)
        time.sleep(1.5)  # mid-stream
        worker.kill9()
        produce(env, third)
        started = time.monotonic()
        worker.start()
        wait_caught_up(settings)
        print(f"crash: recovered and caught up in {time.monotonic() - started:.1f}s")
        assert_matches_simulate(settings, lines)
        wait_projected(settings)  # whatever was published twice, the read models sum the current facts
        totals = sums_of_current_facts(settings)
        assert totals and served(worker, totals) == totals
    finally:
        worker.stop()


