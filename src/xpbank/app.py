"""The one wiring module: the Faust app, its topics and tables, and the agents.

Agents are thin: decode, apply the core through `handle_record`, publish and wait for
the broker's acknowledgement, then write the tables. Nothing else creates an app."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field

import faust

from xpbank.config import Settings
from xpbank.handlers import Handled, InputRecord, handle_record
from xpbank.kafka_io import latest_courses
from xpbank.state import BufferedStore
from xpbank.stream_io import ORIGIN_HEADERS, TableStore, from_timestamp, publish
from xpbank.topics import CURRICULUM, MASTERY, SUBMISSIONS, CALIPER, TOPICS, base_name

log = logging.getLogger("xpbank")
RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
RAW_TABLE = {"key_type": bytes, "value_type": bytes}  # tables derive the raw serializer from bytes
REPLAY_SIGNS = ("duplicates", "already_banked", "noop_finalize", "noop_reset")


@dataclass
class Wiring:
    app: faust.App
    settings: Settings
    store: TableStore
    internal_topics: list[tuple[str, str]]  # (name, cleanup) the worker creates besides the registry's
    metrics: Counter = field(default_factory=Counter)
    curriculum_ready: asyncio.Event = field(default_factory=asyncio.Event)


def app_id(settings: Settings) -> str:
    """Consumer group and table names: a replay with a new generation starts fresh."""
    return f"{settings.topic_prefix}xpbank-g{settings.rules.generation}"


def create_app(settings: Settings) -> Wiring:
    ident = app_id(settings)
    app = faust.App(
        ident,
        broker=settings.broker,
        store=settings.store,
        datadir=str(settings.data_dir / ident),
        web_port=settings.web_port,
        web_in_thread=False,
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        table_standby_replicas=0,
        broker_session_timeout=10,
        broker_heartbeat_interval=1,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        stream_wait_empty=False,
    )
    names = {spec.name: spec.full_name(settings.topic_prefix) for spec in TOPICS}
    topics = {name: app.topic(full, **RAW) for name, full in names.items()}
    rekeyed_name = f"{ident}-rekeyed"
    rekeyed = app.topic(rekeyed_name, partitions=settings.partitions, **RAW)
    learner_inputs = app.topic(names[CALIPER], names[SUBMISSIONS], names[MASTERY], rekeyed_name, **RAW)

    def table(name: str) -> faust.Table:
        return app.Table(name, partitions=settings.partitions, **RAW_TABLE)

    store = TableStore(
        watermarks=table("watermarks"),
        pairs=table("pairs"),
        attempts=table("attempts"),
        masteries=table("masteries"),
        # one changelog partition, written through the partitioner: the layout Faust
        # documents as safe for a GlobalTable shared by several workers
        courses=app.GlobalTable("courses", partitions=1, recovery_buffer_size=1, use_partitioner=True, **RAW_TABLE),
    )
    wiring = Wiring(app, settings, store, [(rekeyed_name, "delete")])
    rules = settings.rules

    @app.task
    async def wait_for_curriculum() -> None:
        """Decisions need the curriculum: hold learner records until this worker's
        GlobalTable has every course the curriculum topic held at startup (a replay
        would otherwise race its own curriculum)."""
        expected = await latest_courses(settings)
        while any(store.courses.get(cid.encode()) != value for cid, value in expected.items()):
            await asyncio.sleep(0.2)
        log.info("curriculum ready courses=%d", sum(v is not None for v in expected.values()))
        wiring.curriculum_ready.set()

    @app.agent(learner_inputs, name="xpbank.learners", concurrency=1)
    async def learners(stream):
        await wiring.curriculum_ready.wait()
        async for event in stream.events():
            record, owner, is_copy = learner_record(event.message, settings.topic_prefix, rekeyed_name)
            buffered = BufferedStore(store)
            handled = handle_record(buffered, record, rules, owner=owner, rekeyed=is_copy)
            for user in sorted(handled.foreign_users):  # route to the learner's own partition
                await (await rekeyed.send(key=user.encode(), value=event.message.value,
                                          headers=origin_headers(record), timestamp=event.message.timestamp))
            await publish(topics, handled.outputs)
            buffered.flush(rewrite_reads=record.topic == MASTERY or any(handled.counts[s] for s in REPLAY_SIGNS))
            observe(wiring, record, handled)

    @app.agent(topics[CURRICULUM], name="xpbank.curriculum", concurrency=1)
    async def curriculum(stream):
        async for event in stream.events():
            record = input_record(event.message, CURRICULUM, names[CURRICULUM])
            handled = handle_record(store, record, rules)
            await publish(topics, handled.outputs)
            observe(wiring, record, handled)

    return wiring


def input_record(message, topic: str, full_name: str) -> InputRecord:
    return InputRecord(
        topic=topic, key=message.key, value=message.value, timestamp=from_timestamp(message.timestamp),
        partition=message.partition, offset=message.offset, topic_full_name=full_name,
    )


def learner_record(message, prefix: str, rekeyed_name: str) -> tuple[InputRecord, str, bool]:
    """The record as its producer sent it, the learner owning this partition, and
    whether this is a routed copy (whose origin travels in headers)."""
    owner = (message.key or b"").decode("utf-8", "replace")
    if message.topic != rekeyed_name:
        return input_record(message, base_name(message.topic, prefix), message.topic), owner, False
    headers = {k: v for k, v in (message.headers or [])}
    origin = headers[ORIGIN_HEADERS[0]].decode()
    key = headers.get(ORIGIN_HEADERS[3])
    record = InputRecord(
        topic=base_name(origin, prefix), key=key or None, value=message.value, timestamp=from_timestamp(message.timestamp),
        partition=int(headers[ORIGIN_HEADERS[1]]), offset=int(headers[ORIGIN_HEADERS[2]]), topic_full_name=origin,
    )
    return record, owner, True


def origin_headers(record: InputRecord) -> list[tuple[str, bytes]]:
    values = (record.topic_full_name or record.topic, str(record.partition), str(record.offset))
    headers = [(name, value.encode()) for name, value in zip(ORIGIN_HEADERS, values)]
    return headers + [(ORIGIN_HEADERS[3], record.key or b"")]


def observe(wiring: Wiring, record: InputRecord, handled: Handled) -> None:
    metrics = wiring.metrics
    metrics[f"records_in:{record.topic}"] += 1
    metrics.update(handled.counts)
    for out in handled.outputs:
        metrics[f"records_out:{out.topic}"] += 1
        kind = type(out.value).__name__
        if kind == "BankedXpAwarded":
            v = out.value
            log.info("award user=%s resource=%s xp=%d revision=%d exercise=%s", v.userSourcedId, v.resourceSourcedId, v.xp, v.revision, v.exerciseSourcedId)
        elif kind == "DeadLetter":
            log.info("dead-letter reason=%s topic=%s offset=%s", out.value.reason, out.value.topic, out.value.offset)
