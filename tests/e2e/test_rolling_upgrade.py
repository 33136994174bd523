"""A rolling upgrade (docs/operations.md, Upgrade): workers are static members with a
session timeout longer than a restart (XPBANK_SESSION_TIMEOUT_SECONDS, 45 s in the
Kubernetes ConfigMap), so restarting them one at a time, as the StatefulSet does, moves
no partition: the group never rebalances, and the facts still equal simulate's."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.conftest import both_engines, xpbank
from tests.e2e.harness import Stream, Worker, current, expected, get_or_none, members_by_name, topic_values, \
    wait_caught_up, without_revision
from xpbank.cli.classroom import classroom
from xpbank.kafka.admin import Admin
from xpbank.runtime.topology import app_id

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class GroupStates:
    """Every state the worker group is seen in, polled on a thread."""

    def __init__(self, settings) -> None:
        self.settings, self.seen, self.running = settings, set(), True
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        async def poll():
            admin = Admin(self.settings)
            while self.running:
                self.seen.add((await admin.group(app_id(self.settings))).state)
                await asyncio.sleep(0.1)
        asyncio.run(poll())

    def __enter__(self) -> GroupStates:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join(10)


@both_engines
def test_restarting_each_worker_within_the_session_timeout_moves_no_partition(env, settings, tmp_path, engine):
    env = env | {"XPBANK_SESSION_TIMEOUT_SECONDS": "30"}
    lines = [a.line for a in classroom(learners=8, seed=3, pace=0.01)]
    assert xpbank(env, "topics", "create").returncode == 0
    workers = [Worker(env, f"w{n}", tmp_path).start() for n in (1, 2)]
    try:
        Stream(settings, lines[: len(lines) // 3]).run()
        wait_caught_up(settings)
        before = members_by_name(settings)
        assert len(before) == 2 and all(before.values())
        stream = Stream(settings, lines[len(lines) // 3:], batch=10, pause=0.1).start()
        with GroupStates(settings) as states:
            for worker in workers:  # one at a time, the next once this one is ready again
                worker.stop()
                worker.start()
                deadline = time.monotonic() + 60
                while get_or_none(worker, "/healthz") != 200:
                    assert time.monotonic() < deadline, worker.log()[-3000:]
                    time.sleep(0.5)
            stream.join()
            wait_caught_up(settings)
        assert states.seen == {"Stable"}, states.seen  # never PreparingRebalance / CompletingRebalance
        assert members_by_name(settings) == before  # each took its own partitions back
        want, _, _ = expected(lines, settings)
        assert without_revision(current(topic_values(settings, "xp.facts.v1"))) == without_revision(want)
    finally:
        for worker in workers:
            worker.stop()
