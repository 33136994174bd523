"""Outages lose nothing and stop no process. Each failure docs/operations.md describes is
produced under load: the broker restarting under every process (both engines), Redis
away, emptied by a restart without persistence or a FLUSHALL, or back with older data
(as after a failover to a replica that missed writes). Each test asserts that the fault
landed, that no process exited, that nothing was lost, and that the outage showed in
/healthz, /metrics and on the page while it lasted. (The gateway's broker outage and a
worker's lost disk: test_gateway_outage.py, test_crash_and_scale_out.py.)"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import orjson
import pytest
import redis

from tests.caliper_fixtures import envelope, timeback_time_spent
from tests.conftest import Broker, both_engines, drop_redis_keys, make_env, xpbank
from tests.e2e.harness import (
    ProjectorProcess, Stream, Worker, eventually, free_port, get, get_json, health, lag, metrics, produce,
    until_working, wait_caught_up,
)
from tests.e2e.test_failures import assert_matches_simulate, chunks
from tests.e2e.test_parity_and_replay import classroom_log
from tests.e2e.test_read_models_api import served, sums_of_current_facts, wait_projected
from tests.gateway_proc import Gateway
from xpbank.config import Settings

pytestmark = pytest.mark.e2e
BROKER_DOWN_SECONDS = 20  # longer than the group session timeout (10 s): members expire
LONG_OUTAGE_SECONDS = 100


class RedisServer:
    """A Redis of this test's own, without persistence unless asked (`shutdown(save=True)`,
    `save()`): a plain restart brings it back empty."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            [shutil.which("redis-server"), "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), "--dbfilename", "dump.rdb"], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.answers():
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
        return self

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=1)

    def answers(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def shutdown(self, save: bool) -> None:
        """Stop; with `save`, keeping its data in its snapshot for the next start."""
        with self.client() as client:
            try:
                client.shutdown(save=save, nosave=not save)
            except redis.ConnectionError:
                pass  # it closes the connection as it goes
        self.process.wait(10)
        if not save:
            (self.directory / "dump.rdb").unlink(missing_ok=True)

    def kill9(self) -> None:
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def own_redis(redis_url, tmp_path):  # redis_url: the shared fixture installs redis-server
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


class Totals:
    """Polls /users/{user}/xp for every learner in the background, keeping every answer:
    a 200 must never show a total lower than one shown before (XP never goes down within
    a generation, so a read model that lost data shows as a drop), anything else must be
    a 503 that says why."""

    def __init__(self, process: Worker, users: list[str]) -> None:
        self.process, self.users = process, users
        self.answers: list[tuple[str, int, dict]] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.done.is_set():
            for user in self.users:
                try:
                    status, body = get_json(self.process, f"/users/{user}/xp")
                except OSError:
                    continue
                self.answers.append((user, status, body))
            time.sleep(0.2)

    def __enter__(self) -> Totals:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join(30)

    def wrong(self) -> list:
        """Answers that broke the rule: a total below an earlier one, or an unexplained refusal."""
        best: dict[str, int] = {}
        wrong = []
        for user, status, body in self.answers:
            if status == 200:
                if body["totalXp"] < best.get(user, 0):
                    wrong.append((user, body["totalXp"], best[user]))
                best[user] = max(best.get(user, 0), body["totalXp"])
            elif status != 503 or not body.get("detail"):
                wrong.append((user, status, body))
        return wrong

    def refusals(self) -> list[str]:
        return [body["detail"] for _, status, body in self.answers if status == 503]


def overview(process: Worker) -> dict:
    """What the page's overview shows (its JSON), with the operations token."""
    status, body = get(process, "/ui/api/overview")
    assert status == 200, body
    return orjson.loads(body)


def alive(*processes) -> None:
    for process in processes:
        running = process.process is not None and process.process.poll() is None
        assert running, f"{process.log_path.stem} exited on its own:\n{process.log()[-3000:]}"


@both_engines
def test_a_broker_restart_under_load_stops_no_process(engine, redis_url, tmp_path):
    broker_restart_under_load(engine, redis_url, tmp_path, BROKER_DOWN_SECONDS, 19900 if engine == "faust" else 19910)


@pytest.mark.slow
@both_engines
def test_a_long_broker_outage_stops_no_process(engine, redis_url, tmp_path):
    """Longer than the clients' request timeouts (aiokafka's 40 s) and many sessions."""
    broker_restart_under_load(engine, redis_url, tmp_path, LONG_OUTAGE_SECONDS, 19920 if engine == "faust" else 19930)


def broker_restart_under_load(engine: str, redis_url: str, tmp_path: Path, down_seconds: float, port: int) -> None:
    """A worker (with records in flight), a projector, an API and a gateway while the
    broker is down for `down_seconds`: none exits, each says so while it lasts, and
    afterwards the facts equal `simulate`'s and the API serves their sums."""
    own = Broker(tmp_path / "kafka", port).up()  # restarted: not the shared one
    env, tag = make_env(own.url, redis_url, tmp_path)
    env |= {"XPBANK_ENGINE": engine, "XPBANK_PROJECTOR": "0"}
    settings = Settings.from_env(env)
    lines = classroom_log(learners=10, seed=23)
    first, rest = lines[: len(lines) * 2 // 3], lines[len(lines) * 2 // 3:]
    worker, projector, api = Worker(env, "w", tmp_path), ProjectorProcess(env, "projector", tmp_path), \
        Worker(env, "api", tmp_path, "api")
    gateway = None
    try:
        assert xpbank(env, "topics", "create").returncode == 0
        produce(env, first)
        for process in (worker, projector, api):
            process.start()
        gateway = Gateway(env, tmp_path).start()
        until_working(settings, since=0)
        in_flight = lag(settings)
        assert own.run("down").returncode == 0
        assert in_flight > 0, "the worker had processed everything before the broker went: nothing was in flight"
        down_at = time.monotonic()

        def outage_shows() -> None:
            for process in (worker, projector):
                status, body = health(process)
                assert status == 503 and body["brokerReachable"] is False, (process.log_path.stem, body)
                assert metrics(process)["xpbank_broker_up"] == 0
            assert gateway.request("GET", "/healthz")[0] == 503
            ops = {"Authorization": f"Bearer {env['XPBANK_API_TOKENS']}"}
            assert "xpbank_gateway_broker_up 0" in gateway.request("GET", "/metrics", headers=ops)[2].decode()
            assert "error" in overview(api)["lag"]  # the page: "Kafka does not answer"
        eventually(outage_shows, timeout=down_seconds, every=1)
        status, _, _ = gateway.post("/caliper/v1p2", envelope([timeback_time_spent("gateway-learner")]))
        assert status == 503
        time.sleep(max(0.0, down_seconds - (time.monotonic() - down_at)))
        alive(worker, projector, api, gateway)

        own.up()
        produce(env, rest)
        def gateway_sends() -> None:
            assert gateway.post("/caliper/v1p2", envelope([timeback_time_spent("gateway-learner")]))[0] == 200
        eventually(gateway_sends, timeout=90)

        def recovered() -> None:
            for process in (worker, projector):
                assert health(process)[0] == 200, health(process)
                assert metrics(process)["xpbank_broker_up"] == 1
        eventually(recovered, timeout=120)
        wait_caught_up(settings, timeout=240)
        assert_matches_simulate(settings, lines)
        wait_projected(settings, timeout=120)
        totals = sums_of_current_facts(settings)
        assert served(api, totals) == totals
        alive(worker, projector, api, gateway)
    finally:
        for process in (worker, projector, api, *([gateway] if gateway else [])):
            process.stop()
        own.run("down", "--purge")
        drop_redis_keys(redis_url, tag)


def test_redis_away_emptied_or_back_with_older_data_loses_nothing(env, settings, tmp_path, own_redis):
    """One worker (with its projector) while a classroom streams in, and Redis: away then
    back with its data; restarted empty; emptied by FLUSHALL; back with older data after
    a kill -9 (a snapshot taken earlier, as a replica that missed writes). Decisions go on
    throughout; every total served is never below one served before; at the end every
    learner's total is the sum of the facts."""
    env = env | {"XPBANK_REDIS_URL": own_redis.url}
    lines = classroom_log(learners=10, seed=29)
    parts = chunks(lines, 5)
    learners = sorted({line["key"].removeprefix("device-of-") for line in lines if "learner-" in (line["key"] or "")})
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, parts[0])
    worker = Worker(env, "w", tmp_path).start()

    def right() -> None:
        wait_caught_up(settings)
        totals = sums_of_current_facts(settings)
        assert served(worker, totals) == totals

    try:
        eventually(right, timeout=120)
        with Totals(worker, learners) as watched:
            # 1. away, under load; back with its data
            stream = Stream(settings, parts[1], batch=10, pause=0.1).start()
            own_redis.shutdown(save=True)

            def away_shows() -> None:
                assert metrics(worker)["xpbank_redis_up"] == 0
                status, body = health(worker)
                assert status == 200 and body["readModels"] == "unavailable"  # decisions go on
                assert overview(worker)["readModels"]["ok"] is False  # the page
                status, body = get_json(worker, f"/users/{learners[0]}/xp")
                assert status == 503 and "read models unavailable" in body["detail"]
            eventually(away_shows, timeout=30)
            stream.join()
            wait_caught_up(settings)  # decided without Redis
            own_redis.start()
            eventually(right, timeout=120)
            assert metrics(worker)["xpbank_redis_up"] == 1

            # 2. restarted without persistence: back empty
            stream = Stream(settings, parts[2], batch=10, pause=0.1).start()
            own_redis.shutdown(save=False)
            own_redis.start()
            stream.join()
            eventually(right, timeout=120)
            assert metrics(worker)["xpbank_read_models_rebuilds_total"] >= 1

            # 3. FLUSHALL, no restart, under load
            stream = Stream(settings, parts[3], batch=10, pause=0.1).start()
            time.sleep(0.5)
            with own_redis.client() as client:
                assert client.dbsize() > 0
                client.flushall()
            stream.join()
            eventually(right, timeout=120)
            assert metrics(worker)["xpbank_read_models_rebuilds_total"] >= 2

            # 4. a snapshot, more projected, kill -9, back from the snapshot: older data
            with own_redis.client() as client:
                client.save()
                snapshot = client.hgetall(f"{env['XPBANK_REDIS_PREFIX']}positions")
                produce(env, parts[4][: len(parts[4]) // 2])
                wait_caught_up(settings)
                wait_projected(settings)
                assert client.hgetall(f"{env['XPBANK_REDIS_PREFIX']}positions") != snapshot  # projected since
            own_redis.kill9()
            own_redis.start()
            with own_redis.client() as client:  # the fault landed: Redis is back with what it held before
                assert client.hgetall(f"{env['XPBANK_REDIS_PREFIX']}positions") in (snapshot, {})
            produce(env, parts[4][len(parts[4]) // 2:])
            eventually(right, timeout=120)
            assert metrics(worker)["xpbank_read_models_losses_total"] >= 1
        assert watched.wrong() == []
        assert any("read models unavailable" in detail for detail in watched.refusals())
        alive(worker)
    finally:
        worker.stop()


@pytest.mark.slow
@both_engines
def test_a_worker_asked_to_stop_while_the_broker_is_away_stops_within_its_grace(engine, redis_url, tmp_path):
    """Its last commit and flush cannot reach the broker: it exits anyway (as kill -9
    would: at least once from its last checkpoint) within the grace, well inside
    Kubernetes' 30 s, and a worker started after the broker is back decides the rest."""
    own = Broker(tmp_path / "kafka", 19940 if engine == "faust" else 19950).up()
    env, tag = make_env(own.url, redis_url, tmp_path)
    env |= {"XPBANK_ENGINE": engine}
    settings = Settings.from_env(env)
    lines = classroom_log(learners=8, seed=31)
    worker = Worker(env, "w", tmp_path)
    try:
        assert xpbank(env, "topics", "create").returncode == 0
        produce(env, lines[: len(lines) // 2])
        worker.start()
        wait_caught_up(settings)
        produce(env, lines[len(lines) // 2:])
        assert own.run("down").returncode == 0
        eventually(lambda: _unready(worker), timeout=30)
        started = time.monotonic()
        worker.stop(timeout=60)
        assert not worker.alive() and time.monotonic() - started < 30, worker.log()[-2000:]
        own.up()
        worker.start()
        wait_caught_up(settings, timeout=240)
        # Every offset may have been committed before the stop, with the outputs of that
        # checkpoint still in its outbox (the stop gave up in their flush; CI saw it): the
        # restarted worker publishes that outbox once its state is recovered, after the
        # group already looks caught up
        eventually(lambda: assert_matches_simulate(settings, lines), timeout=60)
    finally:
        worker.stop()
        own.run("down", "--purge")
        drop_redis_keys(redis_url, tag)


def _unready(process: Worker) -> None:
    status, body = health(process)
    assert status == 503 and body["brokerReachable"] is False


@pytest.mark.slow
@both_engines
def test_a_worker_started_while_the_broker_is_away_waits_for_it_unready(engine, redis_url, tmp_path):
    """A pod restarted during a broker maintenance waits for the broker (503 on /healthz
    with the cause, its port open for a liveness probe), never exits into a crash loop,
    then starts and decides as if nothing happened."""
    own = Broker(tmp_path / "kafka", 19960 if engine == "faust" else 19970).up()
    env, tag = make_env(own.url, redis_url, tmp_path)
    env |= {"XPBANK_ENGINE": engine, "XPBANK_PROJECTOR": "0"}
    settings = Settings.from_env(env)
    lines = classroom_log(learners=3, seed=5)
    worker = Worker(env, "w", tmp_path)
    try:
        assert xpbank(env, "topics", "create").returncode == 0
        produce(env, lines)
        assert own.run("down").returncode == 0
        assert subprocess.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{own.port}"],
                              capture_output=True).returncode != 0  # the fault is there: nothing listens
        worker.start()
        eventually(lambda: _waiting(worker), timeout=60)  # the first check gives up after 15 s
        time.sleep(20)  # past every start-up check: still there, still waiting
        assert worker.alive(), f"the worker exited while its broker was away:\n{worker.log()[-2000:]}"
        _waiting(worker)
        own.up()
        wait_caught_up(settings, timeout=240)
        assert_matches_simulate(settings, lines)
        eventually(lambda: _ready(worker), timeout=60)
        assert "waiting for the broker" in worker.log() and "Traceback" not in worker.log()
    finally:
        worker.stop()
        own.run("down", "--purge")
        drop_redis_keys(redis_url, tag)


def _waiting(process: Worker) -> None:
    answer = health(process)
    assert answer is not None, "nothing answers on the worker's port yet"
    status, body = answer
    assert status == 503 and body["brokerReachable"] is False and "no broker answers" in body["brokerProblem"], body


def _ready(process: Worker) -> None:
    answer = health(process)
    assert answer is not None and answer[0] == 200, answer
