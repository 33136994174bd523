"""Faust's bulk restore (runtime/faust/restore.py) against the real broker and real RocksDB
databases: a changelog partition read in bulk leaves each database as the changelog says
(the last value of each key, deleted keys gone) with the offset it reached, as Faust's
own recovery would; run again it reads only what arrived since; a budget that runs out
leaves a consistent prefix that the next read continues; a failure leaves the
partition to Faust's own recovery."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from confluent_kafka import Producer
from rocksdict import Options, Rdict

from tests.conftest import make_env
from xpbank.config import Settings
from xpbank.kafka.connection import librdkafka_config
from xpbank.runtime.faust.internals import RestoreTarget
from xpbank.runtime.faust.restore import bulk_restore, restore_partitions

pytestmark = pytest.mark.integration
OFFSET_KEY = b"__faust\x00offset__"  # faust.stores.rocksdb.Store.offset_key


async def create_and_produce(settings: Settings, topic: str, records: list[tuple[int, bytes, bytes | None]]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = await admin.list_topics()
        if topic not in existing:
            await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        for partition, key, value in records:
            await producer.send(topic, key=key, value=value, partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


def rocksdb_store(dbs: dict[int, Rdict]) -> SimpleNamespace:
    """What the restore uses of faust's RocksDB store: its open databases and offset key."""
    return SimpleNamespace(_dbs=dbs, _db_for_partition=dbs.__getitem__, offset_key=OFFSET_KEY)


def expected(records: list[tuple[int, bytes, bytes | None]], partition: int) -> dict[bytes, bytes]:
    state: dict[bytes, bytes] = {}
    for p, key, value in records:
        if p != partition:
            continue
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
    return state


def contents(db: Rdict) -> dict[bytes, bytes]:
    return {key: value for key, value in db.items() if key != OFFSET_KEY}


def changelog(round_: int, keys: int = 300) -> list[tuple[int, bytes, bytes | None]]:
    """Writes over two partitions: every key written twice, every seventh deleted."""
    out = []
    for n in range(keys):
        key = f"learner-{n:04d}|{round_}".encode() if n % 50 == 0 else f"learner-{n:04d}".encode()
        out.append((n % 2, key, f"v{round_}-a-{n}".encode()))
        out.append((n % 2, key, f"v{round_}-b-{n}".encode()))
        if n % 7 == 0:
            out.append((n % 2, key, None))
    return out


def test_a_changelog_read_in_bulk_leaves_what_faust_recovery_would_and_resumes_from_its_offset(broker, redis_url, tmp_path):
    env, _ = make_env(broker, redis_url, tmp_path)
    settings = Settings.from_env(env)
    topic = f"{settings.topic_prefix}bulk-restore-changelog"
    first = changelog(1)
    asyncio.run(create_and_produce(settings, topic, first))
    dbs = {p: Rdict(str(tmp_path / f"db-{p}"), Options(raw_mode=True)) for p in (0, 1)}
    store = rocksdb_store(dbs)
    targets = [RestoreTarget(store, topic, p) for p in (0, 1)]
    config = librdkafka_config(settings)
    try:
        done = restore_partitions(config, targets, budget_s=60)
        assert done.complete and sum(done.records.values()) == len(first)
        for p in (0, 1):
            assert contents(dbs[p]) == expected(first, p)
            assert int(dbs[p][OFFSET_KEY]) == sum(1 for q, _, _ in first if q == p) - 1  # the offset reached

        assert restore_partitions(config, targets, budget_s=60).records == {}  # nothing new: nothing read

        second = changelog(2, keys=40)
        asyncio.run(create_and_produce(settings, topic, second))
        done = restore_partitions(config, targets, budget_s=60)
        assert done.complete and sum(done.records.values()) == len(second)  # only what arrived since
        for p in (0, 1):
            assert contents(dbs[p]) == expected(first + second, p)
    finally:
        for db in dbs.values():
            db.close()


def test_a_budget_that_runs_out_leaves_a_prefix_the_next_read_continues(broker, redis_url, tmp_path):
    env, _ = make_env(broker, redis_url, tmp_path)
    settings = Settings.from_env(env)
    topic = f"{settings.topic_prefix}bulk-restore-budget"
    records = changelog(1, keys=2000)
    asyncio.run(create_and_produce(settings, topic, records))
    db = Rdict(str(tmp_path / "db"), Options(raw_mode=True))
    targets = [RestoreTarget(rocksdb_store({0: db}), topic, 0)]
    config = librdkafka_config(settings)
    try:
        stopped = restore_partitions(config, targets, budget_s=0)
        assert not stopped.complete and stopped.records == {}  # the fault landed: nothing was read in time
        done = restore_partitions(config, targets, budget_s=60)
        assert done.complete and contents(db) == expected(records, 0)
    finally:
        db.close()


def test_a_failed_bulk_restore_leaves_the_partition_to_fausts_recovery_with_a_warning(tmp_path, caplog):
    """No broker answers: the restore gives up within its budget, says why, writes nothing
    and raises nothing (Faust's recovery then reads the changelog itself)."""
    db = Rdict(str(tmp_path / "db"), Options(raw_mode=True))
    targets = [RestoreTarget(rocksdb_store({0: db}), "nowhere-changelog", 0)]
    restore = bulk_restore({"bootstrap.servers": "127.0.0.1:1"}, session_timeout_s=1)
    try:
        with caplog.at_level(logging.WARNING, logger="xpbank.restore"):
            asyncio.run(restore(targets))
        assert "Faust's recovery reads the changelog instead" in caplog.text
        assert "nowhere-changelog[0]" in caplog.text
        assert list(db.keys()) == []
    finally:
        db.close()


def test_a_changelog_ending_in_a_transaction_marker_is_read_to_its_end_within_the_budget(broker, redis_url, tmp_path):
    """Written in a transaction, the partition's last offset is the commit marker, which no
    consumer receives: the restore still knows it reached the end and does not wait out
    its budget."""
    env, _ = make_env(broker, redis_url, tmp_path)
    settings = Settings.from_env(env)
    topic = f"{settings.topic_prefix}bulk-restore-transactional"
    asyncio.run(create_and_produce(settings, topic, []))
    producer = Producer(librdkafka_config(settings) | {"transactional.id": f"{topic}-writer"})
    producer.init_transactions(30)
    producer.begin_transaction()
    records = [(0, f"k{n}".encode(), f"v{n}".encode()) for n in range(50)]
    for _, key, value in records:
        producer.produce(topic, key=key, value=value, partition=0)
    producer.commit_transaction(30)
    db = Rdict(str(tmp_path / "db"), Options(raw_mode=True))
    targets = [RestoreTarget(rocksdb_store({0: db}), topic, 0)]
    try:
        done = restore_partitions(librdkafka_config(settings), targets, budget_s=30)
        assert done.complete and done.seconds < 15, done  # ended at the marker, not at the budget
        assert contents(db) == expected(records, 0) and int(db[OFFSET_KEY]) == 49
    finally:
        db.close()
