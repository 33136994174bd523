"""Every course of the compacted curriculum topic, held by every worker.

This is the GlobalTable of the design, kept with a plain group-less consumer rather
than faust's GlobalTable: with several workers faust's GlobalTable can loop in
recovery (its own docstring) and did not keep later updates in sync in our tests."""

from __future__ import annotations

import asyncio
import threading
import logging

from collections import Counter

from aiokafka import AIOKafkaConsumer, TopicPartition

from xpbank.kafka.connection import aiokafka_options
from xpbank.contract import codec
from xpbank.config import Settings
from xpbank.contract.events import CourseDeleted, CourseUpserted
from xpbank.kafka.background import keep_running
from xpbank.kafka.clients import partitions_of
from xpbank.contract.topics import CURRICULUM

log = logging.getLogger("xpbank")


class CurriculumView:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.courses: dict[str, CourseUpserted] = {}
        self.ready = asyncio.Event()  # set once the view has read the topic as it stood at start
        self.loaded = threading.Event()  # the same, for an engine's thread (Quix runs in the main one)

    def ready_now(self) -> bool:
        return self.loaded.is_set()

    def get(self, course: str) -> CourseUpserted | None:
        return self.courses.get(course)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        # invalid records are skipped here: the curriculum agent dead-letters them
        for result in codec.decode("curriculum", value, key, None, self.settings.rules):
            if isinstance(result, codec.Accepted):
                event = result.event
                if isinstance(event, CourseDeleted):
                    self.courses.pop(event.courseSourcedId, None)
                else:
                    self.courses[event.courseSourcedId] = event

    async def follow(self, metrics: Counter | None = None) -> None:
        """Read the topic from the beginning and keep following it; a broker away makes
        it start again (from the beginning: a compacted topic, and courses replace each
        other) rather than end."""
        await keep_running("curriculum view", self._follow, metrics)

    async def _follow(self) -> None:
        name = self.settings.topic_prefix + CURRICULUM
        assigned = [TopicPartition(name, p) for p in await partitions_of(self.settings, name)]
        consumer = AIOKafkaConsumer(**aiokafka_options(self.settings), group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            ends = await consumer.end_offsets(assigned)
            while True:
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    for message in messages:
                        self.apply(message.key, message.value)
                if not self.ready.is_set() and all([await consumer.position(tp) >= ends[tp] for tp in assigned]):
                    log.info("curriculum ready courses=%d", len(self.courses))
                    self.ready.set()
                    self.loaded.set()
        finally:
            await consumer.stop()
