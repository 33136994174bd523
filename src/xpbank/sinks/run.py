"""Wiring of one sink process: its HTTP door (/healthz, /metrics), its HTTP client, and per
consumer life its producer (dead letters, the Caliper store) and sink, until SIGTERM,
SIGINT or, with `until_caught_up`, the end of the facts as they were at start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from xpbank.config import Settings
from xpbank.contract.topics import FACTS, SINK_DEAD_LETTERS, caliper_sent_setup, registry_setups
from xpbank.kafka.admin import Admin, TopicSetupError, create_missing
from xpbank.kafka.connection import aiokafka_options
from xpbank.sinks.caliper import CaliperSink
from xpbank.sinks.consumer import follow
from xpbank.sinks.dead_letters import DeadLetters
from xpbank.sinks.http import Client
from xpbank.sinks.metrics import Health, SinkMetrics
from xpbank.sinks.oneroster import OneRosterSink
from xpbank.sinks.sent import SentStore, restore
from xpbank.sinks.server import serve
from xpbank.sinks.settings import CaliperSettings, OneRosterSettings

log = logging.getLogger("xpbank.sinks")


async def prepare_topics(base: Settings, caliper: bool) -> None:
    """The facts and sink dead-letter topics (and the Caliper store) exist; the store has
    the partitions of the facts, or the sink refuses to start."""
    wanted = [s for s in registry_setups(base.topic_prefix, base.partitions, base.replication_factor,
                                         base.output_retention_days)
              if s.name in (base.topic_prefix + FACTS, base.topic_prefix + SINK_DEAD_LETTERS)]
    if caliper:
        wanted.append(caliper_sent_setup(base.topic_prefix, base.partitions, base.replication_factor))
    await create_missing(base, wanted)
    if caliper:
        described = await Admin(base).describe([wanted[0].name, wanted[-1].name])
        facts, store = (described[n].partitions for n in (base.topic_prefix + FACTS, wanted[-1].name))
        if facts != store:
            raise TopicSetupError(f"{wanted[-1].name} has {store} partitions and {base.topic_prefix + FACTS} {facts}: "
                                  "the store must be partitioned as the facts (delete it: the sink rebuilds it by "
                                  "sending what it does not hold, or see docs/write-back.md)")


async def run(settings: OneRosterSettings | CaliperSettings, until_caught_up: bool = False) -> None:
    base, name = settings.base, settings.name
    metrics, health = SinkMetrics(name), Health()
    runner = await serve(base, settings.port, metrics, health)
    client = Client(settings.delivery, metrics, health)
    caliper = isinstance(settings, CaliperSettings)

    async def make_sink():
        await prepare_topics(base, caliper)
        producer = AIOKafkaProducer(**aiokafka_options(base), acks="all", enable_idempotence=True, linger_ms=5)
        await producer.start()
        dead_letters = DeadLetters(producer, base.topic_prefix, name, metrics)
        if not caliper:
            return OneRosterSink(settings, client, dead_letters, metrics), producer.stop
        reader = AIOKafkaConsumer(**aiokafka_options(base), group_id=None, enable_auto_commit=False,
                                  isolation_level="read_committed")
        await reader.start()
        topic = caliper_sent_setup(base.topic_prefix, 1, 1).name

        async def restore_partitions(partitions: list[int]) -> dict:
            return {p: await restore(reader, topic, [p]) for p in partitions}

        async def close() -> None:
            await reader.stop()
            await producer.stop()
        return CaliperSink(settings, client, dead_letters, SentStore(producer, topic), restore_partitions, metrics), close

    try:
        await follow(base, name, make_sink, metrics, health, until_caught_up)
    finally:
        await client.close()
        await runner.cleanup()


def main(settings: OneRosterSettings | CaliperSettings, until_caught_up: bool, loglevel: str = "INFO") -> None:
    logging.basicConfig(level=loglevel.upper(), format="[%(asctime)s] [%(levelname)s] %(name)s: %(message)s")
    for noisy in ("aiokafka", "kafka", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    async def until_signal() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await run(settings, until_caught_up)

    log.info("sink %s starting: facts of %s", settings.name, settings.base.broker)
    asyncio.run(until_signal())


