"""`xpbank generations list|drop` on the real broker: a generation's groups, topics and
store directories of both engines go; other generations and a running one stay."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.conftest import xpbank
from xpbank.config import Settings
from xpbank.contract.topics import TopicSetup
from xpbank.kafka.admin import Admin
from xpbank.kafka.connection import aiokafka_options
from xpbank.kafka.groups import group_names

NAMES = ("xpbank-g3-rekeyed", "xpbank-g3-pairs-changelog", "xpbank-quix-g3-learners-changelog", "xpbank-g30-rekeyed",
         "xpbank-g4-rekeyed")


async def footprint(settings: Settings) -> AIOKafkaConsumer:
    """Topics and committed groups of generations 3 (both engines) and 30, and a member of 4."""
    prefix, admin = settings.topic_prefix, Admin(settings)
    setups = [TopicSetup(prefix + name, 1, 1, (), "internal") for name in NAMES]
    await admin.create(setups)
    await admin.until_visible(setups)
    for group, topic in (("xpbank-g3", "xpbank-g3-rekeyed"), ("xpbank-quix-g3", "xpbank-g3-rekeyed"),
                         ("xpbank-g30", "xpbank-g30-rekeyed")):
        consumer = AIOKafkaConsumer(**aiokafka_options(settings), group_id=prefix + group, enable_auto_commit=False)
        await consumer.start()
        consumer.assign([TopicPartition(prefix + topic, 0)])
        await consumer.commit({TopicPartition(prefix + topic, 0): 0})
        await consumer.stop()
    member = AIOKafkaConsumer(prefix + "xpbank-g4-rekeyed", **aiokafka_options(settings), group_id=prefix + "xpbank-g4",
                              session_timeout_ms=10000, heartbeat_interval_ms=1000)
    await member.start()
    while not member.assignment():
        await member.getmany(timeout_ms=200)
    return member


def test_drop_deletes_both_engines_of_one_generation_and_refuses_a_running_one(env, settings, tmp_path):
    prefix = settings.topic_prefix
    for name in ("xpbank-g3", "xpbank-quix-g3", "xpbank-g30"):
        (tmp_path / "data" / (prefix + name) / "v1").mkdir(parents=True)
    loop = asyncio.new_event_loop()
    member = loop.run_until_complete(footprint(settings))
    try:
        listed = xpbank(env, "generations", "list")
        assert listed.returncode == 0, listed.stderr.decode()
        text = listed.stdout.decode()
        assert "generation 3 (faust)\n" in text and "generation 3 (quix)\n" in text
        assert "generation 4 (faust)  LIVE" in text and "members=1" in text
        assert f"stores here {tmp_path / 'data' / (prefix + 'xpbank-quix-g3')}" in text

        refused = xpbank(env | {"XPBANK_GENERATION": "4"}, "generations", "drop", "4")
        assert refused.returncode == 1 and b"running members" in refused.stderr
        assert b"XPBANK_GENERATION" in xpbank(env | {"XPBANK_GENERATION": "3"}, "generations", "drop", "3").stderr

        dropped = xpbank(env | {"XPBANK_GENERATION": "4"}, "generations", "drop", "3")
        assert dropped.returncode == 0, dropped.stderr.decode()
        topics = set(loop.run_until_complete(Admin(settings).metadata()).topics)
        assert {prefix + n for n in NAMES} & topics == {prefix + "xpbank-g30-rekeyed", prefix + "xpbank-g4-rekeyed"}
        groups = {g for g in loop.run_until_complete(group_names(Admin(settings))) if g.startswith(prefix)}
        assert groups == {prefix + "xpbank-g30", prefix + "xpbank-g4"}
        assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [prefix + "xpbank-g30"]
        again = xpbank(env | {"XPBANK_GENERATION": "4"}, "generations", "drop", "3")  # on the next pod: nothing left
        assert again.returncode == 0 and b"0 groups, 0 topics, 0 store directories" in again.stderr
    finally:
        loop.run_until_complete(member.stop())
        loop.close()
