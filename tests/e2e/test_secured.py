"""A secured cluster for real (issue 12): the parity test over SASL_SSL with a Redis that
wants a password over TLS, and every way to get the connection wrong ends within 30 s
with a message naming the cause, never the secret."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import drop_redis_keys, make_env, xpbank
from tests.e2e.harness import Worker, get, produce, wait_caught_up
from tests.e2e.test_failures import assert_matches_simulate
from tests.e2e.test_parity_and_replay import classroom_log
from tests.e2e.test_read_models_api import served, sums_of_current_facts, wait_projected
from xpbank.config import Settings

pytestmark = pytest.mark.e2e


@pytest.fixture
def secured_env(secure_broker, secure_redis, redis_url, tmp_path):
    env, tag = make_env(secure_broker["XPBANK_BROKER"], redis_url, tmp_path)
    env = {k: v for k, v in env.items() if k != "XPBANK_REDIS_URL"} | secure_broker | secure_redis
    yield env
    settings = Settings.from_env(env)
    drop_redis_keys(settings.redis_url, tag, settings.redis_ca_file)


def test_parity_over_sasl_ssl_with_a_password_protected_redis(secured_env, tmp_path):
    env, settings = secured_env, Settings.from_env(secured_env)
    assert settings.kafka.protocol == "SASL_SSL" and settings.redis_url.startswith("rediss://")
    lines = classroom_log(learners=6, seed=51)
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, lines)
    worker = Worker(env, "w", tmp_path).start()
    try:
        wait_caught_up(settings)
        assert_matches_simulate(settings, lines)
        wait_projected(settings)
        totals = sums_of_current_facts(settings)
        assert totals and served(worker, totals) == totals
        assert get(worker, "/users/learner-001/xp", token=None)[0] == 401
    finally:
        worker.stop()
    password = Path(env["XPBANK_KAFKA_PASSWORD_FILE"]).read_text().strip()
    assert password not in worker.log() and "Traceback" not in worker.log()


def secret_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "secret"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("change", "cause"), [
    ("wrong password", "authentication failed"),
    ("no CA", "certificate is not trusted"),
    ("plaintext", "wrong protocol"),
])
def test_a_misconfigured_connection_fails_within_30_s_naming_the_cause(secured_env, tmp_path, change, cause):
    env = dict(secured_env)
    if change == "wrong password":
        env["XPBANK_KAFKA_PASSWORD_FILE"] = secret_file(tmp_path, "not-the-password-4711")
    elif change == "no CA":
        env.pop("XPBANK_KAFKA_CA_FILE")
    else:
        env = {k: v for k, v in env.items() if not k.startswith("XPBANK_KAFKA_")}
    for command in (("topics", "create"), ("worker",)):
        started = time.monotonic()
        result = xpbank(env, *command, timeout=60)
        stderr = result.stderr.decode()
        assert result.returncode == 1 and time.monotonic() - started < 30, (command, stderr[-500:])
        assert cause in stderr and "Traceback" not in stderr, (command, stderr[-500:])
        assert "not-the-password-4711" not in stderr + result.stdout.decode()
