"""Redis away: decisions go on, the API answers 503 and says why, the projector retries
and catches up once Redis is back; the read models then equal the sums of the facts."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.conftest import xpbank
from tests.e2e.harness import Worker, eventually, free_port, get, get_json, metrics, produce, wait_caught_up
from tests.e2e.test_failures import chunks
from tests.e2e.test_parity_and_replay import classroom_log
from tests.e2e.test_read_models_api import served, sums_of_current_facts, wait_projected

pytestmark = pytest.mark.e2e


class RedisServer:
    """A Redis of this test's own that keeps its data across a stop (append-only file)."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [shutil.which("redis-server"), "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "yes", "--dir", str(self.directory)], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.answers():
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
        return self

    def answers(self) -> bool:
        try:
            with redis.Redis.from_url(self.url, socket_connect_timeout=1) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: redis flushes the append-only file and exits
            self.process.wait(10)


@pytest.fixture
def own_redis(redis_url, tmp_path):  # redis_url: the shared fixture installs redis-server
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def test_a_redis_outage_stops_no_decision_and_the_read_models_catch_up(env, settings, tmp_path, own_redis):
    env = env | {"XPBANK_REDIS_URL": own_redis.url}
    lines = classroom_log(learners=8, seed=17)
    first, second = chunks(lines, 2)
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, first)
    worker = Worker(env, "w", tmp_path).start()
    try:
        wait_caught_up(settings)
        wait_projected(settings)
        user = sorted(sums_of_current_facts(settings))[0]

        own_redis.stop()
        status, body = get_json(worker, f"/users/{user}/xp")
        assert status == 503 and "read models unavailable" in body["detail"]
        produce(env, second)
        wait_caught_up(settings)  # decisions go on without Redis
        eventually(lambda: _errors_counted(worker), timeout=30)

        own_redis.start()
        wait_projected(settings)
        totals = sums_of_current_facts(settings)
        assert served(worker, totals) == totals
        assert get(worker, f"/users/{user}/xp")[0] == 200
        assert "projector stopped" in worker.log() and "starting again in 2 s" in worker.log()
    finally:
        worker.stop()


def _errors_counted(worker: Worker) -> None:
    assert metrics(worker)["xpbank_projector_restarts_total"] >= 1
