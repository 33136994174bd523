"""The secured broker and Redis of the project's own scripts (issue 12): `kafka.sh up
--secure` (SASL_SSL, SCRAM-SHA-512, ACLs) and `redis.sh up --secure` (password, TLS).
xpbank's clients connect with the settings files the scripts write; a wrong password, an
unknown CA and a plaintext client are refused, and the xpbank user cannot do what only the
admin may."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import redis
import redis.asyncio as aredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AclBinding, AclOperation, AclPermissionType, AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
    NewTopic, ResourcePatternType, ResourceType, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion,
)

from tests.conftest import ROOT, read_env_file, run_root
from xpbank.config import Settings
from xpbank.kafka.admin import Admin, group_lag
from xpbank.kafka.clients import broker_answers
from xpbank.kafka.connection import aiokafka_options, librdkafka_config

pytestmark = pytest.mark.integration


def secured(settings: dict[str, str]) -> Settings:
    """The secured services' settings with a topic prefix of the test's own."""
    return Settings.from_env(settings | {"XPBANK_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:10]}.", "XPBANK_PARTITIONS": "2"})


def script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "deploy" / name / f"{name}.sh"), *args],
                          capture_output=True, text=True, timeout=300)


def wait_for(future, timeout: float = 30):
    return future.result(timeout=timeout)


def create_topic(settings: Settings, name: str, partitions: int = 1) -> None:
    admin = AdminClient(librdkafka_config(settings))
    wait_for(admin.create_topics([NewTopic(name, partitions, 1)])[name])


# --- what the xpbank user can do -------------------------------------------------------


def test_the_xpbank_user_creates_a_topic_produces_and_consumes(secure_broker):
    settings = secured(secure_broker)
    topic, group = settings.topic_prefix + "secured", settings.topic_prefix + "group"
    create_topic(settings, topic)

    async def produce_and_consume() -> list[bytes]:
        producer = AIOKafkaProducer(**aiokafka_options(settings), enable_idempotence=True, acks="all")
        await producer.start()
        try:
            for n in range(3):
                await producer.send_and_wait(topic, f"record {n}".encode(), key=b"learner")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, **aiokafka_options(settings), group_id=group,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=20_000, max_records=3), 30)
            await consumer.commit()
        finally:
            await consumer.stop()
        return [record.value for records in batch.values() for record in records]

    assert asyncio.run(produce_and_consume()) == [b"record 0", b"record 1", b"record 2"]
    assert asyncio.run(group_lag(settings, group, [topic])) == {topic: 0}  # committed offsets: Describe on groups


def test_the_xpbank_user_converges_configs_reads_broker_configs_and_deletes_records(secure_broker):
    settings = secured(secure_broker)
    topic = settings.topic_prefix + "configs"
    create_topic(settings, topic)
    admin = Admin(settings)

    asyncio.run(admin.alter({topic: {"retention.ms": "-1"}}))  # IncrementalAlterConfigs, as `topics create`
    assert asyncio.run(admin.describe([topic]))[topic].configs["retention.ms"] == "-1"
    assert "log.retention.ms" in asyncio.run(admin.broker_configs())  # DescribeConfigs on the cluster

    async def produce() -> None:
        producer = AIOKafkaProducer(**aiokafka_options(settings))
        await producer.start()
        try:
            for n in range(3):
                await producer.send_and_wait(topic, b"x", partition=0)
        finally:
            await producer.stop()

    asyncio.run(produce())
    [future] = admin.client.delete_records([TopicPartition(topic, 0, 2)]).values()
    assert wait_for(future).low_watermark == 2  # the new log start


def test_the_xpbank_user_runs_transactions(secure_broker):
    settings = secured(secure_broker)
    topic = settings.topic_prefix + "transactions"
    create_topic(settings, topic)

    async def transact() -> list[bytes]:
        producer = AIOKafkaProducer(**aiokafka_options(settings), transactional_id=settings.topic_prefix + "tx")
        await producer.start()
        try:
            async with producer.transaction():
                await producer.send_and_wait(topic, b"committed")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, **aiokafka_options(settings), auto_offset_reset="earliest",
                                    isolation_level="read_committed")
        await consumer.start()
        try:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=20_000, max_records=1), 30)
        finally:
            await consumer.stop()
        return [record.value for records in batch.values() for record in records]

    assert asyncio.run(transact()) == [b"committed"]


def test_xpbank_commands_talk_to_the_secured_broker_after_sourcing_its_settings_file(secure_broker):
    """`set -a; . .run/kafka/secure.env` is all a shell needs: topics create creates and
    converges (Create, DescribeConfigs, IncrementalAlterConfigs), topics check agrees."""
    env_file = run_root() / "kafka" / "secure.env"
    prefix = f"t{uuid.uuid4().hex[:10]}."
    env = {k: v for k, v in os.environ.items() if not k.startswith("XPBANK_")} | {
        "XPBANK_TOPIC_PREFIX": prefix, "XPBANK_PARTITIONS": "2"}

    def xpbank(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", 'set -a; . "$0"; set +a; exec "$@"', str(env_file),
                               str(ROOT / ".venv/bin/xpbank"), *args], env=env, capture_output=True, text=True, timeout=120)

    created = xpbank("topics", "create")
    assert created.returncode == 0, created.stderr
    assert f"on {secure_broker['XPBANK_BROKER']}" in created.stdout
    checked = xpbank("topics", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr


# --- what is refused -------------------------------------------------------------------


def librdkafka_errors(settings: Settings) -> list[KafkaError]:
    """The errors a confluent-kafka client reports when it cannot get metadata."""
    errors: list[KafkaError] = []
    client = AdminClient(librdkafka_config(settings) | {"error_cb": errors.append})
    with pytest.raises(KafkaException):
        client.list_topics(timeout=3)
    for _ in range(10):
        client.poll(0.5)
        if errors:
            break
    return errors


def aiokafka_refusal(settings: Settings, caplog) -> str:
    """What aiokafka logs when it cannot bootstrap (it raises KafkaConnectionError)."""
    async def start() -> None:
        producer = AIOKafkaProducer(**aiokafka_options(settings), request_timeout_ms=5000)
        try:
            await producer.start()
        finally:
            await producer.stop()

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        asyncio.run(start())
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("aiokafka"))


def test_a_wrong_password_is_refused(secure_broker, tmp_path, caplog):
    (tmp_path / "password").write_text("not-the-password\n")
    settings = Settings.from_env(secure_broker | {"XPBANK_KAFKA_PASSWORD_FILE": str(tmp_path / "password")})
    assert "SaslAuthenticationFailed" in aiokafka_refusal(settings, caplog)
    errors = librdkafka_errors(settings)
    assert any(e.code() == KafkaError._AUTHENTICATION and "invalid credentials" in e.str() for e in errors), errors


def test_a_client_without_the_ca_does_not_trust_the_broker(secure_broker, caplog):
    settings = Settings.from_env({k: v for k, v in secure_broker.items() if k != "XPBANK_KAFKA_CA_FILE"})
    assert "CERTIFICATE_VERIFY_FAILED" in aiokafka_refusal(settings, caplog)
    errors = librdkafka_errors(settings)
    assert any(e.code() == KafkaError._SSL and "certificate verify failed" in e.str() for e in errors), errors


def test_a_plaintext_client_gets_nothing_from_the_sasl_ssl_port(secure_broker, caplog):
    settings = Settings.from_env({"XPBANK_BROKER": secure_broker["XPBANK_BROKER"]})
    assert "closed" in aiokafka_refusal(settings, caplog)
    assert librdkafka_errors(settings)  # _ALL_BROKERS_DOWN: the broker closes the connection


def test_the_controller_port_takes_only_the_brokers_certificate(secure_broker):
    controller = os.environ.get("XPBANK_KAFKA_SECURE_CONTROLLER_PORT", "9095")
    settings = Settings.from_env({"XPBANK_BROKER": f"kafka://127.0.0.1:{controller}", "XPBANK_KAFKA_SECURITY_PROTOCOL": "SSL",
                                  "XPBANK_KAFKA_CA_FILE": secure_broker["XPBANK_KAFKA_CA_FILE"]})
    errors = librdkafka_errors(settings)  # TLS with the right CA, but no client certificate
    assert any("certificate" in e.str() for e in errors), errors


def test_the_xpbank_user_cannot_do_what_only_the_admin_may(secure_broker):
    settings = secured(secure_broker)
    admin = AdminClient(librdkafka_config(settings))

    def refused(futures: dict) -> str:
        [future] = futures.values()
        with pytest.raises(KafkaException) as refusal:
            wait_for(future)
        return refusal.value.args[0].name()

    assert refused(admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
        "xpbank", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"taken-over")])) == "CLUSTER_AUTHORIZATION_FAILED"
    assert refused(admin.create_acls([AclBinding(
        ResourceType.TOPIC, "*", ResourcePatternType.LITERAL, "User:xpbank", "*",
        AclOperation.ALL, AclPermissionType.ALLOW)])) == "CLUSTER_AUTHORIZATION_FAILED"
    assert refused(admin.incremental_alter_configs([ConfigResource(ResourceType.BROKER, "1", incremental_configs=[
        ConfigEntry("log.retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])])) == "CLUSTER_AUTHORIZATION_FAILED"
    assert asyncio.run(Admin(settings).metadata())  # and its own password still works


# --- the secured Redis ----------------------------------------------------------------


def test_the_secured_redis_answers_with_its_settings_file_only(secure_redis):
    settings = Settings.from_env(secure_redis)
    assert settings.redis_url.startswith("rediss://default:") and settings.redis_ca_file

    async def ping(url: str, **options) -> bool:
        async with aredis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3, **options) as client:
            return await client.ping()

    assert asyncio.run(ping(settings.redis_url, ssl_ca_certs=settings.redis_ca_file))
    address = settings.redis_url.split("@", 1)[1]
    with pytest.raises(redis.AuthenticationError):  # no password
        asyncio.run(ping(f"rediss://{address}", ssl_ca_certs=settings.redis_ca_file))
    with pytest.raises(redis.AuthenticationError):
        asyncio.run(ping(f"rediss://default:not-the-password@{address}", ssl_ca_certs=settings.redis_ca_file))
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):  # the system CAs do not know it
        asyncio.run(ping(settings.redis_url))
    with pytest.raises(redis.ConnectionError):  # no plaintext
        asyncio.run(ping(settings.redis_url.replace("rediss://", "redis://", 1)))


def test_redis_up_secure_is_idempotent_and_down_secure_stops_only_the_secured_redis(secure_redis, redis_url):
    url_file = Path(secure_redis["XPBANK_REDIS_URL_FILE"])
    url, password = url_file.read_text(), url_file.read_text().split("@")[0].rsplit(":", 1)[1]
    assert stat.S_IMODE(url_file.stat().st_mode) == 0o600
    try:
        again = script("redis", "up", "--secure")
        assert again.returncode == 0 and "already running" in again.stdout, again.stderr
        assert password not in again.stdout + again.stderr
        assert script("redis", "down", "--secure").returncode == 0
        assert script("redis", "status", "--secure").returncode == 1
        with redis.Redis.from_url(redis_url, socket_connect_timeout=2) as plain:
            assert plain.ping()
    finally:
        restarted = script("redis", "up", "--secure")
    assert restarted.returncode == 0, restarted.stderr
    assert url_file.read_text() == url and password not in restarted.stdout + restarted.stderr  # same password


# --- the script (last: it restarts the session's secured broker) ----------------------


def test_kafka_up_secure_is_idempotent_and_down_secure_stops_only_the_secured_broker(secure_broker, broker):
    env_file = run_root() / "kafka" / "secure.env"
    password_file = Path(secure_broker["XPBANK_KAFKA_PASSWORD_FILE"])
    password = password_file.read_text().strip()
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert password not in env_file.read_text()
    plain_pid_file = run_root() / "kafka" / "kafka.pid"
    plain_pid = int(plain_pid_file.read_text()) if plain_pid_file.exists() else None
    try:
        again = script("kafka", "up", "--secure")
        assert again.returncode == 0 and "already running" in again.stdout, again.stderr
        assert password not in again.stdout + again.stderr
        down = script("kafka", "down", "--secure")
        assert down.returncode == 0 and "kafka-secure stopped" in down.stdout, down.stderr
        assert script("kafka", "status", "--secure").returncode == 1
        assert asyncio.run(broker_answers(broker.split("://", 1)[1]))  # the plain broker is untouched
        if plain_pid is not None:
            os.kill(plain_pid, 0)
    finally:
        started = time.monotonic()
        restarted = script("kafka", "up", "--secure")  # warm start: same data, users and CA
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert password not in restarted.stdout + restarted.stderr
    assert read_env_file(env_file) == secure_broker and password_file.read_text().strip() == password
    assert asyncio.run(Admin(Settings.from_env(secure_broker)).metadata()), f"restart took {time.monotonic() - started:.0f}s"
