"""`xpbank copy-inputs` on the real broker: every input record reaches the same topic under
the new prefix with its key, value, timestamp and headers, in the partition its key gives
with the new partition count, each key's records in their order; run again it copies
only what arrived since; it refuses when the new topics do not exist."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from tests.conftest import make_env, xpbank
from tests.e2e.harness import produce
from tests.e2e.test_parity_and_replay import classroom_log
from tests.gateway_proc import records
from xpbank.config import Settings
from xpbank.contract.topics import CALIPER, INPUTS
from xpbank.runtime.records import key_partition

pytestmark = pytest.mark.integration


def by_topic(settings: Settings) -> dict[str, list]:
    return {name: records(settings, name) for name in INPUTS}


def test_the_inputs_are_copied_under_a_new_prefix_partitioned_again_and_only_once(broker, redis_url, tmp_path):
    old, _ = make_env(broker, redis_url, tmp_path)
    new = old | {"XPBANK_TOPIC_PREFIX": old["XPBANK_TOPIC_PREFIX"].rstrip(".") + "n.", "XPBANK_PARTITIONS": "7"}
    refused = xpbank(old, "copy-inputs", "--to-prefix", new["XPBANK_TOPIC_PREFIX"])
    assert refused.returncode == 1 and b"xpbank topics create" in refused.stderr  # the new topics come first
    for env in (old, new):
        assert xpbank(env, "topics", "create").returncode == 0
    lines = classroom_log(learners=6, seed=43)
    produce(old, lines[: len(lines) // 2])

    async def with_headers() -> None:  # a re-driven record carries its origin in a header
        producer = AIOKafkaProducer(bootstrap_servers=Settings.from_env(old).bootstrap_servers)
        await producer.start()
        await producer.send_and_wait(old["XPBANK_TOPIC_PREFIX"] + CALIPER, key=b"learner-000", value=b"{}",
                                     timestamp_ms=1_700_000_000_000, headers=[("xpbank-redriven-from", b"x/0/1")])
        await producer.stop()
    asyncio.run(with_headers())

    first = xpbank(old, "copy-inputs", "--to-prefix", new["XPBANK_TOPIC_PREFIX"])
    assert first.returncode == 0, first.stderr.decode()
    produce(old, lines[len(lines) // 2:])
    second = xpbank(old, "copy-inputs", "--to-prefix", new["XPBANK_TOPIC_PREFIX"])
    assert second.returncode == 0, second.stderr.decode()
    copied = [int(line.split()[0].replace(",", "")) for out in (first, second)
              for line in out.stdout.decode().splitlines() if "->" in line]
    assert sum(copied) == len(lines) + 1  # each record once: the second run copied only what came since

    before, after = by_topic(Settings.from_env(old)), by_topic(Settings.from_env(new))
    for name in INPUTS:
        def content(found) -> list:
            return sorted((m.key, m.value, m.timestamp, tuple(m.headers or ())) for m in found)
        assert content(after[name]) == content(before[name]), name
        assert all(m.partition == key_partition(m.key, 7) for m in after[name] if m.key), name
        for key in {m.key for m in before[name]}:  # each key's records in their order
            assert [m.value for m in before[name] if m.key == key] == [m.value for m in after[name] if m.key == key]
