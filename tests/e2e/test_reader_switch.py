"""The replay runbook (docs/operations.md, Replay with a new generation, then switch over),
walked step by step as an operator would: replay, a second projector into new read
models (its own consumer group, so it reads every output record), the workers switched,
the readers switched, the old read models and the old generation removed."""

from __future__ import annotations

import subprocess
from collections import Counter

import pytest
import redis

from tests.conftest import ROOT, xpbank
from tests.e2e.harness import Worker, current, eventually, get_json, produce, topic_values, wait_caught_up, wait_group
from tests.e2e.test_replay import CURRICULUM, one_learner
from xpbank.config import Settings
from xpbank.read.projector import projected_topics, projector_group

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def sums(settings: Settings) -> dict[str, int]:
    """Each learner's XP: the sum of the current facts (greatest generation and revision)."""
    totals: Counter = Counter()
    for fact in current(topic_values(settings, "xp.facts.v1")).values():
        totals[fact["userSourcedId"]] += fact["xp"]
    return dict(totals)


def served(api: Worker, users) -> dict[str, int]:
    return {user: get_json(api, f"/users/{user}/xp")[1]["totalXp"] for user in users}


def keys(redis_url: str, prefix: str) -> list[bytes]:
    with redis.Redis.from_url(redis_url) as client:
        return list(client.scan_iter(match=f"{prefix}*", count=1000))


def test_the_replay_runbook_switches_workers_and_readers_to_the_new_generation(env, tmp_path, redis_url):
    old_prefix, new_prefix = env["XPBANK_REDIS_PREFIX"], env["XPBANK_REDIS_PREFIX"] + "g2:"
    first = [CURRICULUM, *(line for n in range(1, 5) for line in one_learner(f"u{n}", t=10 * n))]
    assert xpbank(env, "topics", "create").returncode == 0
    live = Worker(env | {"XPBANK_PROJECTOR": "1"}, "gen1", tmp_path).start()  # generation 1 with its projector
    started: list = [live]  # stopped at the end whatever happens
    try:
        produce(env, first)
        wait_caught_up(Settings.from_env(env))

        # 1. replay into generation 2 beside the running workers
        gen2 = env | {"XPBANK_GENERATION": "2"}
        replay = xpbank(gen2 | {"XPBANK_DATA_DIR": str(tmp_path / "replay")}, "replay", "--generation", "2", timeout=300)
        assert replay.returncode == 0 and b"caught up" in replay.stderr, replay.stderr.decode()[-2000:]

        # 3a. a second projector with its own XPBANK_REDIS_PREFIX: its own group, every record
        second_env = gen2 | {"XPBANK_REDIS_PREFIX": new_prefix}
        second = Settings.from_env(second_env)
        assert projector_group(second) != projector_group(Settings.from_env(env))
        projector = subprocess.Popen([str(ROOT / ".venv/bin/xpbank"), "projector"], env=second_env,
                                     stdout=open(tmp_path / "projector.log", "wb"), stderr=subprocess.STDOUT)
        started.append(projector)
        wait_group(second, projector_group(second), projected_topics(second), timeout=120, stable=2, interval=0.5)

        # 2. switch the workers: generation 2, the projector now the second one
        live.stop()
        switched = Worker(gen2 | {"XPBANK_REDIS_PREFIX": new_prefix, "XPBANK_PROJECTOR": "0"}, "gen2", tmp_path).start()
        started.append(switched)
        later = [line for n in range(5, 7) for line in one_learner(f"u{n}", t=10 * n)]
        produce(env, later)
        wait_caught_up(Settings.from_env(gen2))
        wait_group(second, projector_group(second), projected_topics(second), timeout=120, stable=2, interval=0.5)
        facts = current(topic_values(second, "xp.facts.v1"))
        assert {f["generation"] for f in facts.values()} == {2} and len(facts) > 0

        # 3b. switch the readers: `xpbank api` on the new prefix answers every learner's sum
        api = Worker(second_env, "api", tmp_path, "api").start()
        started.append(api)
        users = [f"u{n}" for n in range(1, 7)]
        expected = {user: sums(second).get(user, 0) for user in users}
        assert any(expected.values())
        eventually(lambda: served_equals(api, users, expected), timeout=60)

        # 3c. drop the old read models (the runbook's redis-cli line)
        assert keys(redis_url, old_prefix + "xp:")  # the old ones were there
        subprocess.run(["bash", "-c", f"redis-cli -u {redis_url} --scan --pattern '{old_prefix}xp*' | "
                                      f"xargs -r redis-cli -u {redis_url} del > /dev/null"], check=True)
        assert keys(redis_url, old_prefix + "xp") == [] and keys(redis_url, new_prefix + "xp:")

        # 4. clean up generation 1: its group, topics and the old worker's stores
        listed = xpbank(gen2, "generations", "list").stdout.decode()
        assert "generation 2 (faust)  LIVE" in listed and "generation 1 (faust)\n" in listed
        dropped = xpbank(gen2 | {"XPBANK_DATA_DIR": live.env["XPBANK_DATA_DIR"]}, "generations", "drop", "1")
        assert dropped.returncode == 0, dropped.stderr.decode()
        assert "generation 1 " not in xpbank(gen2, "generations", "list").stdout.decode()
        assert not any((tmp_path / "data-gen1").glob(f"{env['XPBANK_TOPIC_PREFIX']}xpbank-g1*"))
    finally:
        for process in started:
            if isinstance(process, Worker):
                process.stop()
            else:
                process.terminate()
                process.wait(30)


def served_equals(api: Worker, users: list[str], expected: dict[str, int]) -> None:
    try:
        answered = served(api, users)
    except OSError as exc:  # not listening yet
        raise AssertionError(f"the API does not answer yet: {exc}") from None
    assert answered == expected
