"""Chaos: three workers and a projector while a classroom streams in; workers are killed
(-9) and restarted at random, and the broker itself restarts once. No process may exit
on its own (a worker or the projector found dead that was not killed fails the test at
once, with its log). Afterwards the facts equal `simulate`'s, no award id was published
with two values, and the read models are the sums of the facts.

Seeded: the seed is printed; XPBANK_CHAOS_SEED=<seed> replays the same schedule."""

from __future__ import annotations

import os
import random
import time

import pytest

from tests.conftest import Broker, drop_redis_keys, make_env, xpbank
from tests.e2e.harness import ProjectorProcess, Worker, produce, wait_caught_up
from tests.e2e.test_failures import assert_matches_simulate, chunks
from tests.e2e.test_parity_and_replay import classroom_log
from tests.e2e.test_read_models_api import read_models, sums_of_current_facts, wait_projected
from xpbank.config import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
BATCHES = 12


def test_random_kills_and_a_broker_restart_lose_nothing_and_duplicate_no_fact(broker, redis_url, tmp_path):
    seed = int(os.environ.get("XPBANK_CHAOS_SEED") or random.SystemRandom().randrange(1 << 31))
    print(f"chaos seed {seed} (XPBANK_CHAOS_SEED={seed} replays this schedule)")
    rng = random.Random(seed)
    own = Broker(tmp_path / "kafka", 19492).up()  # restarted below: not the shared one
    env, tag = make_env(own.url, redis_url, tmp_path)
    env |= {"XPBANK_PROJECTOR": "0"}
    settings = Settings.from_env(env)
    lines = classroom_log(learners=16, seed=seed % 10_000)
    workers = [Worker(env, f"w{n}", tmp_path) for n in range(3)]
    projector = ProjectorProcess(env, "projector", tmp_path)
    restart_broker_after = rng.randrange(3, BATCHES - 3)
    down: dict[Worker, int] = {}  # killed worker -> batch after which it comes back
    try:
        assert xpbank(env, "topics", "create").returncode == 0
        for worker in (*workers, projector):
            worker.start()
        for number, batch in enumerate(chunks(lines, BATCHES)):
            produce(env, batch)
            none_died_on_its_own(workers, projector, down)
            for worker, back in list(down.items()):
                if number >= back:
                    print(f"batch {number}: restart {worker.log_path.stem}")
                    worker.start()
                    del down[worker]
            alive = [w for w in workers if w not in down]
            if number == restart_broker_after:
                print(f"batch {number}: broker restart")
                assert own.run("down").returncode == 0
                time.sleep(rng.uniform(1, 4))
                own.up()
            elif rng.random() < 0.6 and len(alive) > 1:
                victim = rng.choice(alive)
                print(f"batch {number}: kill -9 {victim.log_path.stem}")
                victim.kill9()
                down[victim] = number + rng.randrange(1, 3)
            time.sleep(rng.uniform(0.3, 2.0))
        none_died_on_its_own(workers, projector, down)
        for worker in down:
            print(f"end: start {worker.log_path.stem}")
            worker.start()
        started = time.monotonic()
        wait_caught_up(settings, timeout=300)
        print(f"chaos: caught up {time.monotonic() - started:.1f}s after the last batch")
        assert_matches_simulate(settings, lines)
        wait_projected(settings, timeout=120)
        totals = sums_of_current_facts(settings)
        assert totals and read_models(settings, totals) == totals
        none_died_on_its_own(workers, projector, {})
        assert "does not answer" in projector.log()  # the broker restart reached the projector; it rode it out
    finally:
        for worker in (*workers, projector):
            worker.stop()
        own.run("down", "--purge")
        drop_redis_keys(redis_url, tag)


def none_died_on_its_own(workers: list[Worker], projector: Worker, killed: dict) -> None:
    for process in (*workers, projector):
        if process not in killed and not process.alive():
            pytest.fail(f"{process.log_path.stem} exited on its own (code {process.process.returncode}):\n"
                        f"{process.log()[-4000:]}")
