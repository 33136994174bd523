"""Chaos, on both engines: three workers and a projector while a classroom streams in;
workers are killed (-9) and restarted on a seeded schedule, and the broker itself
restarts once. Every kill lands with records in flight: a batch is produced and
acknowledged, the victim is killed at once, and records of the partitions it held are
still uncommitted after the kill (checked for each kill). No process may exit on its own
(a worker or the projector found dead that was not killed fails the test at once, with
its log). Afterwards the facts equal the second oracle's (tests/oracle/), no award id
was published with two values, and the read models are the sums of the facts.

The seed is fixed (DEFAULT_SEED) and printed; XPBANK_CHAOS_SEED=<seed> runs another
schedule, and the printed one again."""

from __future__ import annotations

import os
import random
import time

import pytest

from tests.conftest import Broker, both_engines, drop_redis_keys, make_env, xpbank
from tests.e2e.harness import (
    ProjectorProcess, Stream, Worker, eventually, health, members_by_name, produce, uncommitted_on, wait_caught_up,
)
from tests.e2e.test_failures import assert_matches_simulate, chunks
from tests.e2e.test_parity_and_replay import classroom_log
from tests.e2e.test_read_models_api import read_models, sums_of_current_facts, wait_projected
from xpbank.config import Settings
from xpbank.kafka.admin import KafkaUnavailable

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
BATCHES = 12
DEFAULT_SEED = 20261203
BROKER_PORT = 19292  # the chaos run's own broker (19293 its controller)


@both_engines
def test_random_kills_and_a_broker_restart_lose_nothing_and_duplicate_no_fact(broker, redis_url, tmp_path, engine):
    seed = int(os.environ.get("XPBANK_CHAOS_SEED") or DEFAULT_SEED)
    print(f"chaos seed {seed} on {engine} (XPBANK_CHAOS_SEED={seed} runs this schedule again)")
    rng = random.Random(seed)
    own = Broker(tmp_path / "kafka", BROKER_PORT).up()  # restarted below: not the shared one
    env, tag = make_env(own.url, redis_url, tmp_path)
    env |= {"XPBANK_PROJECTOR": "0", "XPBANK_ENGINE": engine}
    settings = Settings.from_env(env)
    lines = classroom_log(learners=16, seed=seed % 10_000)
    workers = [Worker(env, f"w{n}", tmp_path) for n in range(3)]
    projector = ProjectorProcess(env, "projector", tmp_path)
    restart_broker_after = rng.randrange(3, BATCHES - 3)
    down: dict[Worker, int] = {}  # killed worker -> batch after which it comes back
    kills: list[tuple[int, str, int]] = []  # (batch, victim, records uncommitted on its partitions after the kill)
    try:
        assert xpbank(env, "topics", "create").returncode == 0
        for worker in (*workers, projector):
            worker.start()
        for number, batch in enumerate(chunks(lines, BATCHES)):
            none_died_on_its_own(workers, projector, down)
            for worker, back in list(down.items()):
                if number >= back:
                    print(f"batch {number}: restart {worker.log_path.stem}")
                    worker.start()
                    del down[worker]
            alive = [w for w in workers if w not in down]
            kill = number != restart_broker_after and rng.random() < 0.6 and len(alive) > 1
            victim = rng.choice(alive) if kill else None
            if victim is None:
                produce(env, batch)
            else:
                left = kill_with_records_in_flight(settings, victim, alive, batch)
                print(f"batch {number}: kill -9 {victim.log_path.stem}, {left} records in flight on its partitions")
                kills.append((number, victim.log_path.stem, left))
                down[victim] = number + rng.randrange(1, 3)
            if number == restart_broker_after:
                # once every live worker has started: the kills, not the start-up wait, are what this
                # run is about (a start during an outage: test_outages.py)
                eventually(lambda: settled(settings, alive), timeout=120)
                print(f"batch {number}: broker restart")
                assert own.run("down").returncode == 0
                time.sleep(rng.uniform(1, 4))
                own.up()
            time.sleep(rng.uniform(0.3, 2.0))
        none_died_on_its_own(workers, projector, down)
        for worker in down:
            print(f"end: start {worker.log_path.stem}")
            worker.start()
        started = time.monotonic()
        wait_caught_up(settings, timeout=300)
        print(f"chaos: caught up {time.monotonic() - started:.1f}s after the last batch")
        assert kills and all(left > 0 for *_, left in kills), f"a kill found nothing in flight: {kills}"
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


def kill_with_records_in_flight(settings: Settings, victim: Worker, alive: list[Worker], batch: list[dict]) -> int:
    """Once every live worker holds learner partitions (no rebalance under way), produce
    `batch` (acknowledged by the broker) and kill -9 `victim` at once. Returns the records
    of the victim's partitions still uncommitted after the kill: exact, as a dead worker
    commits nothing more, and what its successor must process again."""
    partitions = eventually(lambda: settled(settings, alive), timeout=120)[victim.env["XPBANK_INSTANCE_ID"]]
    Stream(settings, batch, batch=len(batch), pause=0).run()  # in this process: the kill follows the ack at once
    victim.kill9()
    return uncommitted_on(settings, partitions)


def settled(settings: Settings, alive: list[Worker]) -> dict[str, set]:
    """The partitions each live worker holds, once every live worker answers ready and
    the group is exactly them, each holding learner partitions (AssertionError while it
    settles). Readiness first: a static member killed and started again is listed with
    its old partitions before the new process has even connected."""
    answers = {w.log_path.stem: health(w) for w in alive}
    assert all(a is not None and a[0] == 200 for a in answers.values()), f"starting: {answers}"
    try:
        held = members_by_name(settings)
    except KafkaUnavailable as exc:  # a fresh or restarted broker: the group's coordinator is not up yet
        raise AssertionError(str(exc)) from None
    assert set(held) == {w.env["XPBANK_INSTANCE_ID"] for w in alive} and all(held.values()), f"settling: {held}"
    return held


def none_died_on_its_own(workers: list[Worker], projector: Worker, killed: dict) -> None:
    for process in (*workers, projector):
        if process not in killed and not process.alive():
            pytest.fail(f"{process.log_path.stem} exited on its own (code {process.process.returncode}):\n"
                        f"{process.log()[-4000:]}")
