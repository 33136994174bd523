"""The projector: follows `xp.facts.v1`, `xp.attempts.v1` and `xp.decisions.v1` into the
Redis read models.

At least once: a batch's offsets are committed only after Redis applied it, and every
upsert is idempotent (`projection.py`). It runs as a task of `xpbank worker` (unless
`XPBANK_PROJECTOR=0`) or on its own as `xpbank projector`. A projector failure never
touches a decision: it logs, waits and starts again."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterable
from typing import Annotated

from aiokafka import AIOKafkaConsumer
from pydantic import Field, TypeAdapter, ValidationError

from xpbank.kafka.connection import aiokafka_options
from xpbank.config import DEFAULTS, Settings
from xpbank.kafka.clients import read_topic
from xpbank.contract.outputs import AttemptEvent, BankingDecided, XpFact
from xpbank.contract.topics import ATTEMPTS, DECISIONS, FACTS, base_name
from xpbank.read.projection import Keys, Upsert, plan_attempt, plan_decision, plan_fact
from xpbank.read.read_models import ReadModels

log = logging.getLogger("xpbank.projector")
ATTEMPT_EVENT = TypeAdapter(Annotated[AttemptEvent, Field(discriminator="type")])


def projector_group(settings: Settings) -> str:
    """One group per set of read models: a second projector with its own
    XPBANK_REDIS_PREFIX (the reader switch of a replay) reads every output record again
    into its own keys instead of sharing the live projector's partitions. The default
    prefix keeps the group name projectors have always had."""
    group = f"{settings.topic_prefix}xpbank-projector"
    return group if settings.redis_prefix == DEFAULTS["XPBANK_REDIS_PREFIX"] else f"{group}-{settings.redis_prefix}"


def projected_topics(settings: Settings) -> list[str]:
    return [settings.topic_prefix + t for t in (FACTS, ATTEMPTS, DECISIONS)]


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
    planned = []
    for m in messages:
        topic = base_name(m.topic, settings.topic_prefix)
        metrics[f"projector_in:{topic}"] += 1
        upsert = plan(keys, topic, m.value, m.offset)
        if upsert is not None:
            planned.append(upsert)
    return planned


async def project(settings: Settings, metrics: Counter | None = None) -> None:
    """Follow the output topics forever (until cancelled), restarting after failures."""
    metrics = Counter() if metrics is None else metrics
    while True:
        try:
            await _follow(settings, metrics)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis or the broker away: a read model may lag, never a decision
            metrics["projector_errors"] += 1
            log.warning("projector stopped (%s: %s); starting again in 2 s", type(exc).__name__, exc)
            await asyncio.sleep(2)


async def _follow(settings: Settings, metrics: Counter) -> None:
    models = ReadModels.connect(settings)
    consumer = AIOKafkaConsumer(
        *projected_topics(settings),
        **aiokafka_options(settings),
        group_id=projector_group(settings),
        group_instance_id=f"{settings.instance_id}-projector" if settings.instance_id else None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",  # outputs of an aborted transaction (exactly-once) never count
        session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    try:
        await models.client.ping()
        log.info("projector following %s into %s (prefix %r)", ", ".join(projected_topics(settings)),
                 settings.redis_display, settings.redis_prefix)
        while True:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
            messages = [m for tp in sorted(batch, key=lambda tp: (tp.topic, tp.partition)) for m in batch[tp]]
            if not messages:
                continue
            metrics["projector_applied"] += await models.apply(plans(settings, models.keys, messages, metrics))
            await consumer.commit()
    finally:
        await consumer.stop()
        await models.close()


async def rebuild(settings: Settings, batch: int = 2000) -> dict[str, int]:
    """Delete every read-model key under the prefix, then project both output topics
    from the beginning (no consumer group) up to their current end. Run it with the
    projectors stopped: a live projector writing between the delete and the end could
    leave a total counting a fact that was deleted."""
    models = ReadModels.connect(settings)
    counts: Counter = Counter()
    started = time.monotonic()
    try:
        counts["keys_deleted"] = await models.clear()
        print(f"deleted {counts['keys_deleted']:,} keys under {settings.redis_prefix!r}", file=sys.stderr)
        for full in projected_topics(settings):
            pending = []
            async for message in read_topic(settings, full):
                pending.append(message)
                if len(pending) >= batch:
                    counts["applied"] += await models.apply(plans(settings, models.keys, pending, counts))
                    pending.clear()
                    _progress(counts, started)
            counts["applied"] += await models.apply(plans(settings, models.keys, pending, counts))
            _progress(counts, started)
        print(file=sys.stderr)
    finally:
        await models.close()
    return dict(counts)


def _progress(counts: Counter, started: float) -> None:
    read = sum(v for k, v in counts.items() if k.startswith("projector_in:"))
    print(f"\rrebuild: {read:,} records read, {counts['applied']:,} applied ({time.monotonic() - started:.0f}s)",
          end="", file=sys.stderr, flush=True)


def main_projector(settings: Settings) -> None:
    """`xpbank projector`: the projector on its own, until interrupted."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    for name in ("aiokafka", "kafka"):
        logging.getLogger(name).setLevel(logging.WARNING)
    asyncio.run(project(settings))

