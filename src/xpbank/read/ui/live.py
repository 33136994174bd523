"""The overview's live figures: a tail of `xp.banked.v1`, `xp.facts.v1` and
`xp.dead-letters.v1` in the API process.

A group-less, read_committed aiokafka consumer starts at the offsets of "now minus one
hour" (offsets_for_times) and follows the topics. Records read while catching up count
in the minute of their timestamp (clamped into the hour); records arriving afterwards in
the minute they arrive. It runs only while someone watches (started by the page, stopped
after `IDLE_SECONDS` without a viewer, its figures dropped), and its memory is bounded:
61 minutes of counts, the newest 25 awards, the latest 8 dead letters, and a bounded
queue per open page (a slow page misses single events, never the next overview)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from xpbank.config import Settings
from xpbank.contract.topics import BANKED, DEAD_LETTERS, FACTS, base_name
from xpbank.kafka.admin import Admin
from xpbank.kafka.connection import aiokafka_options
from xpbank.read.ui.views import WINDOW_MINUTES, MinuteCounts, award_item, letter_item, letters_by_reason

log = logging.getLogger("xpbank.ui")
IDLE_SECONDS = 600.0
NEWEST_AWARDS, LATEST_LETTERS, QUEUE = 25, 8, 256


class Newest:
    """The `n` items with the greatest time seen so far (ties: the later one), in a heap."""

    def __init__(self, n: int) -> None:
        self.n, self.heap, self.seq = n, [], itertools.count()

    def add(self, at: float, item: dict) -> None:
        entry = (at, next(self.seq), item)
        if len(self.heap) < self.n:
            heapq.heappush(self.heap, entry)
        else:
            heapq.heappushpop(self.heap, entry)

    def items(self) -> list[dict]:
        return [item for _, _, item in sorted(self.heap, reverse=True)]


class LiveTail:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings, self.clock = settings, clock
        self.subscribers: set[asyncio.Queue] = set()
        self.task: asyncio.Task | None = None
        self.wanted_at = 0.0
        self._reset("idle")

    def _reset(self, state: str, problem: str | None = None) -> None:
        self.counts = MinuteCounts(WINDOW_MINUTES)
        self.awards, self.letters = Newest(NEWEST_AWARDS), Newest(LATEST_LETTERS)
        self.state, self.problem = state, problem

    def want(self) -> None:
        """Someone watches: start the tail unless it runs."""
        self.wanted_at = self.clock()
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(), name="xpbank-ui-tail")

    def subscribe(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(maxsize=QUEUE)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self.subscribers.discard(queue)

    def publish(self, kind: str, item: dict | None) -> None:
        for queue in self.subscribers:
            if not queue.full():  # a page that does not keep up catches up with the next overview
                queue.put_nowait((kind, item))

    def snapshot(self) -> dict:
        now = self.clock()
        totals = self.counts.totals(now)
        return {"state": self.state, "problem": self.problem,
                "series": self.counts.series(("awards", "facts", "dead"), now),
                "totals": {"awards": totals["awards"], "facts": totals["facts"], "deadLetters": totals["dead"]},
                "deadLettersByReason": letters_by_reason(totals),
                "awards": self.awards.items(), "deadLetters": self.letters.items()}

    def idle(self) -> bool:
        return self.clock() - self.wanted_at > IDLE_SECONDS

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _run(self) -> None:
        while not self.idle():
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the broker away: say so on the page, try again
                log.warning("live figures stopped (%s: %s); trying again in 5 s", type(exc).__name__, exc)
                self._reset("error", f"{type(exc).__name__}: {exc}"[:300])
                await asyncio.sleep(5)
        self._reset("idle")

    async def _follow(self) -> None:
        prefix = self.settings.topic_prefix
        names = [prefix + t for t in (BANKED, FACTS, DEAD_LETTERS)]
        found = await Admin(self.settings, timeout=10).partitions(names)
        if {t for t, _ in found} != set(names):
            self._reset("waiting for topics", "the output topics do not exist yet (xpbank topics create)")
            await asyncio.sleep(5)
            return
        consumer = AIOKafkaConsumer(**aiokafka_options(self.settings), group_id=None, enable_auto_commit=False,
                                    isolation_level="read_committed", auto_offset_reset="latest")
        await consumer.start()
        try:
            assigned = [TopicPartition(t, p) for t, p in found]
            consumer.assign(assigned)
            since_ms = int((self.clock() - WINDOW_MINUTES * 60) * 1000)
            starts = await consumer.offsets_for_times({tp: since_ms for tp in assigned})
            ends = await consumer.end_offsets(assigned)
            for tp in assigned:
                consumer.seek(tp, starts[tp].offset if starts.get(tp) is not None else ends[tp])
            behind = {tp for tp in assigned if starts.get(tp) is not None and starts[tp].offset < ends[tp]}
            self._reset("catching up" if behind else "live")
            while not self.idle():
                batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
                now = self.clock()
                for tp, messages in batch.items():
                    topic = base_name(tp.topic, prefix)
                    for m in messages:
                        self._count(topic, m, now, live=m.offset >= ends[tp])
                for tp in list(behind):  # read to where it ended at the start (transaction markers too)
                    if await consumer.position(tp) >= ends[tp]:
                        behind.discard(tp)
                if not behind and self.state == "catching up":
                    self.state = "live"
                    self.publish("state", None)
        finally:
            await consumer.stop()

    def _count(self, topic: str, message, now: float, live: bool) -> None:
        stamp = message.timestamp / 1000 if message.timestamp and message.timestamp > 0 else now
        at = now if live else min(stamp, now)
        try:
            value = orjson.loads(message.value) if message.value else {}
        except orjson.JSONDecodeError:
            value = {}
        if not isinstance(value, dict):
            value = {}
        if topic == FACTS:
            self.counts.add(at, "facts", now)
        elif topic == BANKED:
            self.counts.add(at, "awards", now)
            item = award_item(value, at)
            self.awards.add(at, item)
            if live:
                self.publish("award", item)
        elif topic == DEAD_LETTERS:
            self.counts.add(at, "dead", now)
            self.counts.add(at, f"dead:{value.get('reason')}", now)
            item = letter_item(value, at)
            self.letters.add(at, item)
            if live:
                self.publish("deadLetter", item)
