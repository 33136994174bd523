"""`xpbank replay` at its edges: empty topics, partitions without records, records that
arrive while it runs (then a worker of the new generation takes over), and `--follow`."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.builders import attempt, course, heartbeat, resource
from tests.conftest import ROOT, xpbank
from tests.e2e.harness import Worker, current, expected, produce, topic_values, wait_caught_up
from xpbank.config import Settings

pytestmark = pytest.mark.e2e


def one_learner(user: str = "u1", t: float = 0) -> list[dict]:
    return [heartbeat(user, "v1", 60, t + 10), heartbeat(user, "v1", 60, t + 70), *attempt(user, "ex1", t + 100, [True, True])]


CURRICULUM = course("c1", [[resource("v1", 1, "Video", 5), resource("ex1", 2, "Exercise", 2)]])


def generation(env: dict[str, str], n: int) -> tuple[dict[str, str], Settings]:
    replay_env = env | {"XPBANK_GENERATION": str(n)}
    return replay_env, Settings.from_env(replay_env)


def assert_generation_facts(settings: Settings, lines: list[dict], n: int) -> None:
    want, _, _ = expected(lines, settings)
    facts = current(topic_values(settings, "xp.facts.v1"))
    assert {f["generation"] for f in facts.values()} == {n}
    assert {fid: f["xp"] for fid, f in facts.items()} == {fid: f["xp"] for fid, f in want.items()} != {}


def test_a_replay_of_empty_topics_stops_at_once(env, tmp_path):
    assert xpbank(env, "topics", "create").returncode == 0
    started = time.monotonic()
    replay = xpbank(env | {"XPBANK_DATA_DIR": str(tmp_path / "replay")}, "replay", "--generation", "2", timeout=120)
    assert replay.returncode == 0, replay.stderr.decode()[-2000:]
    assert b"caught up" in replay.stderr and time.monotonic() - started < 60


def test_a_replay_with_partitions_that_hold_no_records_stops_with_every_fact(env, settings, tmp_path):
    lines = [CURRICULUM, *one_learner()]  # one learner: one partition of four holds records
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, lines)
    replay = xpbank(env | {"XPBANK_DATA_DIR": str(tmp_path / "replay")}, "replay", "--generation", "2", timeout=180)
    assert replay.returncode == 0, replay.stderr.decode()[-2000:]
    assert_generation_facts(settings, lines, 2)


def test_records_arriving_during_a_replay_are_processed_and_a_worker_of_its_generation_takes_over(env, tmp_path):
    first = [CURRICULUM, *one_learner("u1"), *one_learner("u2")]
    later = [line for n in range(3, 9) for line in one_learner(f"u{n}", t=20 * n)]
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, first)
    replay_env, settings = generation(env, 2)
    with open(tmp_path / "replay.log", "wb") as log:
        replay = subprocess.Popen([str(ROOT / ".venv/bin/xpbank"), "replay", "--generation", "2"],
                                  env=replay_env | {"XPBANK_DATA_DIR": str(tmp_path / "replay")}, stdout=log, stderr=log)
    try:
        for n in range(0, len(later), 6):  # while it runs
            produce(env, later[n:n + 6])
            time.sleep(1)
        assert replay.wait(180) == 0, (tmp_path / "replay.log").read_text()[-2000:]
    finally:
        if replay.poll() is None:
            replay.kill()
    assert b"caught up" in (tmp_path / "replay.log").read_bytes()
    worker = Worker(replay_env, "g2", tmp_path).start()  # the switch-over: XPBANK_GENERATION=2
    try:
        wait_caught_up(settings)
        assert_generation_facts(settings, first + later, 2)
    finally:
        worker.stop()


def test_replay_follow_keeps_running_as_its_generations_worker(env, tmp_path):
    lines, more = [CURRICULUM, *one_learner("u1")], one_learner("u2", t=50)
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, lines)
    replay_env, settings = generation(env, 3)
    following = Worker(replay_env, "follow", tmp_path, "replay", "--generation", "3", "--follow").start()
    try:
        wait_caught_up(settings)
        assert_generation_facts(settings, lines, 3)
        produce(env, more)
        wait_caught_up(settings)
        assert following.alive()
        assert_generation_facts(settings, lines + more, 3)
    finally:
        following.stop()
    assert following.process.returncode is not None
