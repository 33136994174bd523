"""The gateway's own user on the project's secured broker (`kafka.sh up --secure`,
deploy/kafka/secure.sh): `xpbank gateway` sends as `xpbank-gateway`, whose ACLs allow
producing to the input topics and nothing else, under a Kafka produce quota; the workers
keep their `xpbank` user (test_secured_services.py)."""

from __future__ import annotations

import asyncio
import os
import uuid

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError
from aiokafka.protocol.admin import DescribeClientQuotasRequest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from tests.caliper_fixtures import envelope, timeback_time_spent
from tests.gateway_proc import Gateway, records
from xpbank.config import Settings
from xpbank.contract.topics import TOPICS
from xpbank.kafka.connection import aiokafka_options, librdkafka_config

pytestmark = pytest.mark.integration

INPUTS = [spec.name for spec in TOPICS if spec.direction.startswith("in")]


def unprefixed(settings: dict[str, str]) -> Settings:
    """The registry's own names: the gateway user's ACLs name them (no test prefix)."""
    return Settings.from_env(settings | {"XPBANK_TOPIC_PREFIX": "", "XPBANK_PARTITIONS": "2"})


def ensure_topics(settings: Settings, names: list[str]) -> None:
    admin = AdminClient(librdkafka_config(settings))
    for name, future in admin.create_topics([NewTopic(n, 2, 1) for n in names]).items():
        try:
            future.result(30)
        except KafkaException as exc:
            assert "TOPIC_ALREADY_EXISTS" in str(exc), (name, exc)


def test_the_gateway_sends_as_its_own_user_which_may_only_produce_to_the_inputs(
        secure_broker, secure_gateway_broker, tmp_path):
    workers, gateway_user = unprefixed(secure_broker), unprefixed(secure_gateway_broker)
    assert gateway_user.kafka.username == "xpbank-gateway" != workers.kafka.username
    ensure_topics(workers, [*INPUTS, "xp.facts.v1"])
    learner = f"secured-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("XPBANK_")} | secure_gateway_broker
    gateway = Gateway(env | {"XPBANK_TOPIC_PREFIX": "", "XPBANK_API_TOKENS": ""}, tmp_path).start()
    try:
        assert gateway.post("/caliper/v1p2", envelope([timeback_time_spent(learner)]))[0] == 200
    finally:
        gateway.stop()
    assert "Traceback" not in gateway.log()
    [arrived] = [m for m in records(workers, "learning.caliper.v1") if m.key == learner.encode()]
    assert orjson.loads(arrived.value)["data"][0]["actor"]["id"].endswith(learner)

    async def refused() -> list[type]:
        errors = []
        producer = AIOKafkaProducer(**aiokafka_options(gateway_user), enable_idempotence=True)
        await producer.start()
        try:
            await producer.send_and_wait("learning.mastery.v1", b"{}", key=b"k")  # an input: allowed
            try:
                await producer.send_and_wait("xp.facts.v1", b"{}", key=b"k")
            except TopicAuthorizationFailedError as exc:
                errors.append(type(exc))
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer("learning.caliper.v1", **aiokafka_options(gateway_user), group_id="gw-reads",
                                    auto_offset_reset="earliest")
        try:
            await consumer.start()
            await asyncio.wait_for(consumer.getmany(timeout_ms=5000), 20)
        except (TopicAuthorizationFailedError, GroupAuthorizationFailedError) as exc:
            errors.append(type(exc))
        finally:
            await consumer.stop()
        return errors

    errors = asyncio.run(refused())
    assert errors[0] is TopicAuthorizationFailedError and len(errors) == 2, errors
    admin = AdminClient(librdkafka_config(gateway_user))
    [future] = admin.create_topics([NewTopic(f"gw-made-{uuid.uuid4().hex[:6]}", 1, 1)]).values()
    with pytest.raises(KafkaException, match="AUTHORIZATION_FAILED"):
        future.result(30)


def test_the_gateway_user_has_a_produce_quota(secure_broker, secure_gateway_broker):
    """Read as the workers' user (DescribeConfigs on the cluster lets it describe quotas)."""
    async def quotas() -> dict[str, float]:
        admin = AIOKafkaAdminClient(**aiokafka_options(unprefixed(secure_broker)))
        await admin.start()
        try:
            response = await admin._send_request(DescribeClientQuotasRequest([("user", 0, "xpbank-gateway")], True))
        finally:
            await admin.close()
        assert response.error_code == 0, response
        return {name: value for _, values in response.entries for name, value in values}

    assert asyncio.run(quotas()) == {"producer_byte_rate": 33554432.0}
