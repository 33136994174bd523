"""Wiring of one sink process: its HTTP door (/healthz, /metrics), its HTTP client, and per
consumer life its producer (dead letters, the Caliper store) and sink, until SIGTERM,
SIGINT or, with `until_caught_up`, the end of the facts as they were at start."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import signal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from xpbank.config import Settings
from xpbank.contract.topics import FACTS, SINK_DEAD_LETTERS, caliper_sent_setup, registry_setups
from xpbank.kafka.admin import Admin, create_missing
from xpbank.kafka.background import BrokerProbe, quiet_libraries
from xpbank.kafka.connection import aiokafka_options
from xpbank.sinks.caliper import CaliperSink
from xpbank.sinks.consumer import SetupRefused, follow
from xpbank.sinks.dead_letters import DeadLetters
from xpbank.sinks.http import Client
from xpbank.sinks.metrics import Health, SinkMetrics
from xpbank.sinks.oneroster import OneRosterSink
from xpbank.sinks.sent import SentStore, restore
from xpbank.sinks.server import serve
from xpbank.sinks.settings import CaliperSettings, OneRosterSettings

log = logging.getLogger("xpbank.sinks")


async def prepare_topics(base: Settings, caliper: bool) -> None:
    """The facts and sink dead-letter topics exist, and for the Caliper sink its store,
    made with the partitions the facts have; a store partitioned otherwise is refused."""
    facts_topic = base.topic_prefix + FACTS
    await create_missing(base, [s for s in registry_setups(base.topic_prefix, base.partitions, base.replication_factor,
                                                           base.output_retention_days)
                                if s.name in (facts_topic, base.topic_prefix + SINK_DEAD_LETTERS)])
    if not caliper:
        return
    admin = Admin(base)
    partitions = (await admin.describe([facts_topic]))[facts_topic].partitions
    store = caliper_sent_setup(base.topic_prefix, partitions, base.replication_factor)
    await create_missing(base, [store])
    held = (await admin.describe([store.name]))[store.name].partitions
    if held != partitions:
        raise SetupRefused(f"{store.name} has {held} partitions and {facts_topic} {partitions}: the Caliper "
                           "store must be partitioned as the facts (docs/write-back.md, The store)")


async def run(settings: OneRosterSettings | CaliperSettings, until_caught_up: bool = False) -> None:
    base, name = settings.base, settings.name
    metrics, health = SinkMetrics(name), Health()
    runner = await serve(base, settings.port, metrics, health)
    client = Client(settings.delivery, metrics, health)
    caliper = isinstance(settings, CaliperSettings)

    async def make_sink():
        await prepare_topics(base, caliper)
        producer = AIOKafkaProducer(**aiokafka_options(base), acks="all", enable_idempotence=True, linger_ms=5)
        reader = AIOKafkaConsumer(**aiokafka_options(base), group_id=None, enable_auto_commit=False,
                                  isolation_level="read_committed") if caliper else None
        try:
            await producer.start()
            if reader is not None:
                await reader.start()
        except BaseException:
            await producer.stop()
            if reader is not None:
                await reader.stop()
            raise
        dead_letters = DeadLetters(producer, base.topic_prefix, name, metrics)
        if not caliper:
            return OneRosterSink(settings, client, dead_letters, metrics), producer.stop
        topic = caliper_sent_setup(base.topic_prefix, 1, 1).name

        async def restore_partitions(partitions: list[int]) -> dict:
            return {p: await restore(reader, topic, [p]) for p in partitions}

        async def close() -> None:
            await reader.stop()
            await producer.stop()
        return CaliperSink(settings, client, dead_letters, SentStore(producer, topic), restore_partitions, metrics), close

    watch = asyncio.create_task(watch_broker(base, health))
    try:
        await follow(base, name, make_sink, metrics, health, until_caught_up)
    finally:
        watch.cancel()
        await client.close()
        await runner.cleanup()


async def watch_broker(base: Settings, health: Health, every: float = 5.0) -> None:
    """/healthz says whether the broker answers (the consumer itself waits out an outage
    quietly), checked every few seconds with a metadata request."""
    probe = BrokerProbe(base, every=every, timeout=every)
    while True:
        if await probe.check():
            health.broker_answered()
        else:
            health.broker_failed(f"the broker does not answer: {probe.problem}"[:300])
        await asyncio.sleep(every)


def main(settings: OneRosterSettings | CaliperSettings, until_caught_up: bool, loglevel: str = "INFO") -> None:
    faulthandler.enable()  # a crash in a C extension (librdkafka) leaves its stack in the log
    faulthandler.register(signal.SIGUSR1)  # kill -USR1: every thread's stack in the log, the sink goes on
    logging.basicConfig(level=loglevel.upper(), format="[%(asctime)s] [%(levelname)s] %(name)s: %(message)s")
    quiet_libraries(settings.base, ("aiokafka", "kafka", "aiohttp"))  # aiokafka logs each failed connection

    async def until_signal() -> None:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await run(settings, until_caught_up)
        log.info("sink %s stopped", settings.name)

    log.info("sink %s starting: facts of %s", settings.name, settings.base.broker)
    asyncio.run(until_signal())


