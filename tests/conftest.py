"""Shared fixtures. The broker and Redis are real and started by the project's own
scripts: XPBANK_BROKER / XPBANK_REDIS_URL when set and answering (e.g. docker compose),
else deploy/kafka/kafka.sh and deploy/redis/redis.sh. The secured ones (`secure_broker`,
`secure_redis`) always come from those scripts' `up --secure`."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import uuid
import warnings
from pathlib import Path

import pytest
import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

import tests.budget  # noqa: F401  (Hypothesis: derandomized for every test, before any test module)
from tests import builders
from xpbank.config import ConfigError, Settings
from xpbank.kafka.admin import Admin, KafkaUnavailable
from xpbank.kafka.clients import broker_answers

ROOT = Path(__file__).resolve().parents[1]


def _start(script: str, *options: str) -> None:
    result = subprocess.run(["bash", str(ROOT / script), "up", *options], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"{script} up {' '.join(options)} failed:\n{result.stdout}\n{result.stderr}")


def run_root() -> Path:
    """Where the scripts keep their run directories (XPBANK_RUN_DIR, else .run)."""
    return Path(os.environ.get("XPBANK_RUN_DIR") or ROOT / ".run").resolve()


def read_env_file(path: Path) -> dict[str, str]:
    """The KEY=value lines of a settings file the scripts write (values shell-quoted)."""
    pairs = [shlex.split(line)[0] for line in path.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    return dict(pair.split("=", 1) for pair in pairs)


SESSION_TAGS: list[str] = []  # every test's prefix tag (make_env): its topics go at the session's end


@pytest.fixture(scope="session")
def broker():
    """A real broker: XPBANK_BROKER, else one already answering on 127.0.0.1:9092 (another
    checkout's, or docker compose), else the project's own script starts one. The topics
    the session's tests made are deleted at its end: kept, a few suites' thousands of
    partitions made the broker's next start outlast kafka.sh's readiness wait."""
    if not os.environ.get("XPBANK_BROKER") and not asyncio.run(broker_answers("127.0.0.1:9092")):
        _start("deploy/kafka/kafka.sh")
    url = os.environ.get("XPBANK_BROKER", "kafka://127.0.0.1:9092")
    yield url
    delete_session_topics(url)


def delete_session_topics(url: str) -> None:
    prefixes = tuple(f"t{tag}." for tag in SESSION_TAGS)
    admin = AdminClient({"bootstrap.servers": url.split("://", 1)[-1]})
    names = [name for name in admin.list_topics(timeout=30).topics if name.startswith(prefixes)] if prefixes else []
    failed = []
    for start in range(0, len(names), 200):
        for name, future in admin.delete_topics(names[start:start + 200], operation_timeout=60).items():
            try:
                future.result()
            except KafkaException as exc:
                failed.append(f"{name}: {exc}")
    if failed:
        warnings.warn(f"{len(failed)} of the session's {len(names)} topics not deleted, e.g. {failed[0]}", stacklevel=1)


def _redis_answers(url: str) -> bool:
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A real Redis: XPBANK_REDIS_URL when it answers, else deploy/redis/redis.sh starts one
    on 127.0.0.1:6379 (or accepts the one answering there)."""
    url = os.environ.get("XPBANK_REDIS_URL")
    if url and _redis_answers(url):
        return url
    _start("deploy/redis/redis.sh")
    return "redis://127.0.0.1:6379/0"


async def _secure_broker_answers(settings: dict[str, str]) -> bool:
    try:
        await Admin(Settings.from_env(settings), timeout=5).metadata()
        return True
    except (ConfigError, KafkaUnavailable):
        return False


@pytest.fixture(scope="session")
def secure_broker() -> dict[str, str]:
    """The secured broker of `deploy/kafka/kafka.sh up --secure` (SASL_SSL, SCRAM-SHA-512,
    ACLs; 127.0.0.1:9094), started by the script unless it answers with the settings in
    .run/kafka/secure.env. Returns those settings: XPBANK_BROKER and the XPBANK_KAFKA_*
    security variables of the `xpbank` user (password and CA as file paths)."""
    path = run_root() / "kafka" / "secure.env"
    if not (path.exists() and asyncio.run(_secure_broker_answers(read_env_file(path)))):
        _start("deploy/kafka/kafka.sh", "--secure")
    return read_env_file(path)


@pytest.fixture(scope="session")
def secure_gateway_broker(secure_broker) -> dict[str, str]:
    """The settings of the gateway's own user on the secured broker (`xpbank-gateway`: it
    may only produce to the input topics), from .run/kafka/secure-gateway.env; `up
    --secure` again (idempotent) gives a broker started before that user existed its user."""
    path = run_root() / "kafka" / "secure-gateway.env"
    if not (path.exists() and asyncio.run(_secure_broker_answers(read_env_file(path)))):
        _start("deploy/kafka/kafka.sh", "--secure")
    return read_env_file(path)


def _secure_redis_answers(settings: dict[str, str]) -> bool:
    try:
        secured = Settings.from_env(settings)
        tls = {"ssl_ca_certs": secured.redis_ca_file} if secured.redis_ca_file else {}
        with redis.Redis.from_url(secured.redis_url, socket_connect_timeout=2, socket_timeout=2, **tls) as client:
            return bool(client.ping())
    except (ConfigError, redis.RedisError):
        return False


@pytest.fixture(scope="session")
def secure_redis() -> dict[str, str]:
    """The secured Redis of `deploy/redis/redis.sh up --secure` (password, TLS;
    127.0.0.1:6380), started by the script unless it answers with the settings in
    .run/redis/secure.env. Returns those settings (XPBANK_REDIS_URL_FILE, XPBANK_REDIS_CA_FILE)."""
    path = run_root() / "redis" / "secure.env"
    if not (path.exists() and _secure_redis_answers(read_env_file(path))):
        _start("deploy/redis/redis.sh", "--secure")
    return read_env_file(path)


class Broker:
    """A broker of the project's own script in its own run directory and ports, for tests
    that need other broker settings than the shared one's, or that restart it."""

    def __init__(self, run_dir: Path, port: int, **settings: str) -> None:
        self.run_dir, self.port = run_dir, port
        self.env = os.environ | {"XPBANK_RUN_DIR": str(run_dir), "XPBANK_KAFKA_PORT": str(port),
                                 "XPBANK_KAFKA_CONTROLLER_PORT": str(port + 1), **settings}

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(ROOT / "deploy/kafka/kafka.sh"), *args], env=self.env,
                              capture_output=True, text=True, timeout=300)

    def up(self) -> Broker:
        result = self.run("up")
        if result.returncode != 0:
            raise RuntimeError(f"kafka.sh up failed:\n{result.stdout}\n{result.stderr}")
        return self


def make_env(broker: str, redis_url: str, tmp_path: Path) -> tuple[dict[str, str], str]:
    tag = uuid.uuid4().hex[:10]
    SESSION_TAGS.append(tag)
    return {
        **os.environ,
        "XPBANK_BROKER": broker,
        "XPBANK_REDIS_URL": redis_url,
        "XPBANK_REDIS_PREFIX": f"test:{tag}:",
        "XPBANK_TOPIC_PREFIX": f"t{tag}.",
        "XPBANK_PARTITIONS": "4",
        "XPBANK_DATA_DIR": str(tmp_path / "data"),
        "XPBANK_API_TOKENS": f"tok-{uuid.uuid4().hex}",
    }, tag


def drop_redis_keys(redis_url: str, tag: str, ca_file: str | None = None) -> None:
    with redis.Redis.from_url(redis_url, **({"ssl_ca_certs": ca_file} if ca_file else {})) as client:
        keys = list(client.scan_iter(match=f"test:{tag}:*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start:start + 1000])


ENGINES = ("faust", "quix")
# the end-to-end tests every engine must pass: @both_engines def test_...(env, settings, ...)
both_engines = pytest.mark.parametrize("engine", ENGINES, indirect=True)


@pytest.fixture
def engine(request) -> str:
    """The stream engine of the test's workers: faust unless the test runs on both."""
    return getattr(request, "param", "faust")


@pytest.fixture
def env(broker: str, redis_url: str, tmp_path: Path, engine: str):
    """Environment for one test: its own topic prefix and Redis key prefix, so tests never
    see each other's records; the test's Redis keys are deleted afterwards."""
    environment, tag = make_env(broker, redis_url, tmp_path)
    environment["XPBANK_ENGINE"] = engine
    yield environment
    drop_redis_keys(redis_url, tag)


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


def xpbank(env: dict[str, str], *args: str, input: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real `xpbank` command line."""
    command = [str(ROOT / ".venv/bin/xpbank"), *args]
    return subprocess.run(command, env=env, input=input, capture_output=True, timeout=timeout, check=False)


# ---- the clusters of the slow tier (tests/clusters.py): fixed ports, so one fixture each ----
@pytest.fixture(scope="session")
def kafka_cluster():
    """make kafka-up-cluster's three brokers (127.0.0.1:9192-9194); stopped at the end, with
    the session's topics purged, if the session started them (dead topics would slow every
    later start and `wait_in_sync`)."""
    from tests.clusters import KafkaCluster

    cluster = KafkaCluster()
    running = cluster.running()
    yield cluster.up()
    if not running:
        cluster.run("down", "--purge")


@pytest.fixture
def whole_kafka_cluster(kafka_cluster):
    """The three brokers up and every replica in sync (an earlier test may have killed one)."""
    return kafka_cluster.up()


@pytest.fixture(scope="session")
def redis_cluster():
    """make redis-up-cluster's three masters with a replica each (127.0.0.1:7101-7106);
    stopped at the end if the session started them."""
    from tests.clusters import RedisClusterNodes

    nodes = RedisClusterNodes()
    running = nodes.running()
    yield nodes.up()
    if not running:
        nodes.run("down")


@pytest.fixture(autouse=True)
def records_dated_from_now(monkeypatch):
    """Each test's records are dated from its own start (builders.BASE), not the suite's:
    40 minutes into a run, records dated from the start would be older than the
    development broker's one-hour retention and than "the last hour" the page shows."""
    monkeypatch.setattr(builders, "BASE", builders.base_now())
