"""The output topics as the projector reads them: its group and topics, each record's
upsert, every record to the topics' ends as they are now (a rebuild), the positions it
records, and where to send a partition back to."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from typing import Annotated

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import Field, TypeAdapter, ValidationError

from xpbank.config import DEFAULTS, Settings
from xpbank.contract.outputs import AttemptEvent, BankingDecided, XpFact
from xpbank.contract.topics import ATTEMPTS, DECISIONS, FACTS, base_name
from xpbank.kafka.admin import Admin
from xpbank.kafka.connection import aiokafka_options
from xpbank.read.projection import Keys, Upsert, plan_attempt, plan_decision, plan_fact, position_field

log = logging.getLogger("xpbank.projector")
BATCH = 2000  # records per fetch


def projector_group(settings: Settings) -> str:
    """One group per set of read models: a second projector with its own
    XPBANK_REDIS_PREFIX (the reader switch of a replay) reads every output record again
    into its own keys instead of sharing the live projector's partitions. The default
    prefix keeps the group name projectors have always had."""
    group = f"{settings.topic_prefix}xpbank-projector"
    return group if settings.redis_prefix == DEFAULTS["XPBANK_REDIS_PREFIX"] else f"{group}-{settings.redis_prefix}"


def projected_topics(settings: Settings) -> list[str]:
    return [settings.topic_prefix + t for t in (FACTS, ATTEMPTS, DECISIONS)]


async def assigned_positions(consumer: AIOKafkaConsumer) -> dict[str, int]:
    """Every assigned partition's next offset: what the group commits next (past the
    transaction markers of exactly-once outputs too). None for an empty one: absent reads from 0."""
    positions = {position_field(tp.topic, tp.partition): await consumer.position(tp) for tp in consumer.assignment()}
    return {field: offset for field, offset in positions.items() if offset}


async def seek_or_rewind(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int | None) -> None:
    if offset is None:
        await consumer.seek_to_beginning(tp)
    else:
        consumer.seek(tp, offset)


async def read_to_end(settings: Settings, topics: list[str]):
    """Batches of every record of `topics` from the beginning up to their ends as they
    are now (topics not created yet are empty), each with the partitions it completes
    (position field -> end offset)."""
    found = await Admin(settings).partitions(topics)
    if not found:
        return
    consumer = AIOKafkaConsumer(**aiokafka_options(settings), group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        assigned = [TopicPartition(t, p) for t, p in found]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        remaining = set(assigned)
        while remaining:
            done = {}
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
                    if ends[tp]:  # (an empty partition has no position to hold: absent reads from 0)
                        done[position_field(tp.topic, tp.partition)] = ends[tp]
            batch = await consumer.getmany(*remaining, timeout_ms=1000, max_records=BATCH) if remaining else {}
            messages = [m for tp in sorted(batch, key=lambda tp: (tp.topic, tp.partition))
                        for m in batch[tp] if m.offset < ends[tp]]
            if messages or done:
                yield messages, done
    finally:
        await consumer.stop()


ATTEMPT_EVENT = TypeAdapter(Annotated[AttemptEvent, Field(discriminator="type")])


def plan(keys: Keys, topic: str, value: bytes | None, offset: int) -> Upsert | None:
    """The upsert for one output record, or None for one that is not ours to project."""
    if value is None:
        return None
    try:
        if topic == FACTS:
            return plan_fact(keys, XpFact.model_validate_json(value))
        if topic == ATTEMPTS:
            return plan_attempt(keys, ATTEMPT_EVENT.validate_json(value), offset)
        if topic == DECISIONS:
            return plan_decision(keys, BankingDecided.model_validate_json(value), offset)
    except (ValidationError, ValueError) as exc:
        log.warning("projector skipped an unreadable record topic=%s offset=%s: %s", topic, offset, str(exc)[:200])
    return None


def plans(settings: Settings, keys: Keys, messages: Iterable, metrics: Counter) -> list[Upsert]:
    """The messages' upserts."""
    planned = []
    for m in messages:
        topic = base_name(m.topic, settings.topic_prefix)
        metrics[f"projector_in:{topic}"] += 1
        upsert = plan(keys, topic, m.value, m.offset)
        if upsert is not None:
            planned.append(upsert)
    return planned
