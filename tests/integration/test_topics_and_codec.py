"""The real broker: topics created by `xpbank topics create`, records round-tripped."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.builders import at, course, heartbeat, resource, to_bytes
from tests.conftest import xpbank
from xpbank.contract import codec
from xpbank.core.rules import Rules
from xpbank.runtime.topology import internal_setups, sink_setups
from xpbank.contract.topics import TOPICS

pytestmark = pytest.mark.integration


async def describe(settings, names):
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        meta = await admin.describe_topics(names)
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    finally:
        await admin.close()
    partitions = {t["topic"]: len(t["partitions"]) for t in meta}
    cleanup = {}
    for response in configs:
        for _error, _message, _type, name, entries in response.resources:
            cleanup[name] = next(value for key, value, *_ in entries if key == "cleanup.policy")
    return partitions, cleanup


def test_topics_create_makes_every_topic_with_its_partitions_and_policy_and_is_idempotent(env, settings):
    first = xpbank(env, "topics", "create")
    assert first.returncode == 0, first.stderr
    names = [spec.full_name(settings.topic_prefix) for spec in TOPICS]
    internal = [s.name for s in internal_setups(settings) + sink_setups(settings)]
    assert sorted(line.split()[1] for line in first.stdout.decode().splitlines() if line.startswith("created")) == sorted(names + internal)
    partitions, cleanup = asyncio.run(describe(settings, names))
    assert partitions == {name: 4 for name in names}
    assert cleanup == {spec.full_name(settings.topic_prefix): spec.cleanup for spec in TOPICS}
    again = xpbank(env, "topics", "create")
    assert again.returncode == 0 and b"0 created, 0 altered" in again.stdout


def test_topics_create_says_why_the_broker_refused(env):
    refused = xpbank(env | {"XPBANK_REPLICATION_FACTOR": "2"}, "topics", "create")  # one broker here
    assert refused.returncode == 1
    assert b"cannot create topic" in refused.stderr and b"replication factor" in refused.stderr
    assert b"Traceback" not in refused.stderr


def test_produce_and_dump_round_trip_record_lines(env, settings):
    assert xpbank(env, "topics", "create").returncode == 0
    lines = [course("c1", [[resource("v1", 1, "Video", 5)]]), heartbeat("u1", "v1", 30, 10), heartbeat("u2", "v1", 40, 20)]
    lines.append({"topic": "learning.caliper.v1", "key": "u3", "raw": "{not json", "timestamp": at(30)})
    produced = xpbank(env, "produce", "-", input=b"\n".join(to_bytes(lines)))
    assert produced.returncode == 0, produced.stderr
    dumped = xpbank(env, "dump", "learning.caliper.v1")  # the registry name, like every command
    assert dumped.returncode == 0, dumped.stderr
    records = sorted((orjson.loads(l) for l in dumped.stdout.splitlines()), key=lambda r: r["key"])
    assert [r["key"] for r in records] == ["u1", "u2", "u3"]
    assert records[0]["value"] == lines[1]["value"] and records[2]["value"] == "{not json"
    assert records[0]["timestamp"] == lines[1]["timestamp"]
    assert all(isinstance(r["partition"], int) and isinstance(r["offset"], int) for r in records)


def test_records_round_trip_through_aiokafka_and_decode_to_the_same_models(settings, env):
    assert xpbank(env, "topics", "create").returncode == 0
    topic = settings.topic_prefix + "learning.caliper.v1"
    values = [orjson.dumps(heartbeat(f"u{i}", "v1", 30 + i, 10 + i)["value"]) for i in range(20)]

    async def round_trip():
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, enable_idempotence=True)
        await producer.start()
        try:
            for i, value in enumerate(values):
                await producer.send_and_wait(topic, value=value, key=f"u{i}".encode())
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest",
                                    group_id=None, enable_auto_commit=False)
        await consumer.start()
        got = []
        try:
            while len(got) < len(values):
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 30)
                got += [m for ms in batch.values() for m in ms]
        finally:
            await consumer.stop()
        return got

    received = asyncio.run(round_trip())
    assert sorted(m.value for m in received) == sorted(values)
    for message in received:
        [decoded] = codec.decode("caliper", message.value, message.key, None, Rules())
        assert isinstance(decoded, codec.Accepted)
        assert decoded.event.user == message.key.decode()
