"""`xpbank sink caliper`: each change of a fact's xp becomes one Timeback `ActivityEvent`
with `xpEarned` (SPEC §3.7), in Caliper envelopes of at most XPBANK_CALIPER_BATCH_SIZE
events. Per batch of fact records:

1. each record newer than what is held for its factId becomes a step, in offset order
   (its value is the fact's xp minus what the server holds; 0 sends nothing);
2. the steps are written ahead to the store (`sent.py`), events attached;
3. the events are POSTed; an envelope refused for good is sent again event by event,
   and only the events refused alone are dead-lettered (their xp is not held, so the
   fact's next change carries it);
4. the store is written again without the events (and older records deleted), then the
   consumer commits the batch.

Events written ahead by a sink that died before its batch was settled are found when the
partition is assigned: they are sent first, unchanged."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from xpbank.contract.outputs import XpFact
from xpbank.contract.times import format_time
from xpbank.kafka.redrive import HEADER as REDRIVE_HEADER
from xpbank.sinks.analytics import Sent, batches, change, envelope, xp_earned, xp_earned_event
from xpbank.sinks.consumer import Batch
from xpbank.sinks.dead_letters import DeadLetters, read_fact
from xpbank.sinks.http import Client
from xpbank.sinks.metrics import SinkMetrics
from xpbank.sinks.sent import Held, SentStore, record_key, record_value
from xpbank.sinks.settings import CaliperSettings

log = logging.getLogger("xpbank.sinks")


def redriven(record) -> bool:
    """The record was sent again by `xpbank dead-letters redrive` (kafka/sink_letters.py)."""
    return any(name == REDRIVE_HEADER for name, _ in record.headers or ())


@dataclass(frozen=True)
class Step:
    fact_id: str
    partition: int
    event: dict
    origin: tuple[int, int]  # the fact record's (partition, offset)


class CaliperSink:
    def __init__(self, settings: CaliperSettings, client: Client, dead_letters: DeadLetters, store: SentStore,
                 restore, metrics: SinkMetrics) -> None:
        self.settings, self.client, self.dead_letters, self.store = settings, client, dead_letters, store
        self.restore, self.metrics = restore, metrics
        self.held: dict[str, Held] = {}  # factId -> what the server holds (its record's key)
        self.stale: dict[str, tuple[bytes, ...]] = {}  # factId -> older records still in the store
        self.partition_of: dict[str, int] = {}
        self.resend: list[Step] = []

    @property
    def pending(self) -> bool:
        return bool(self.resend)

    async def assigned(self, partitions: list[int]) -> None:
        for partition, held in (await self.restore(partitions)).items():
            for fact_id, state in held.items():
                self.held[fact_id], self.partition_of[fact_id] = Held(state.sent, state.key), partition
                self.stale[fact_id] = state.stale
                self.resend.extend(Step(fact_id, partition, p.event, p.origin) for p in state.pending)
        if self.resend:
            log.info("sink caliper: %d events written ahead and not known delivered: sending them again",
                     len(self.resend))

    async def revoked(self, partitions: list[int]) -> None:
        lost = set(partitions)
        for fact_id in [f for f, p in self.partition_of.items() if p in lost]:
            del self.held[fact_id], self.partition_of[fact_id]
            self.stale.pop(fact_id, None)
        self.resend = [step for step in self.resend if step.partition not in lost]

    async def handle(self, batch: Batch) -> None:
        steps, touched, ahead = list(self.resend), {step.fact_id for step in self.resend}, []
        for partition, records in batch.items():
            for record in records:
                fact = await read_fact(record, partition, self.dead_letters)
                if fact is not None:
                    self.decide(fact, (partition, record.offset), steps, touched, ahead, redriven(record))
        await self.store.write(ahead)  # written ahead: before anything is sent
        refused = await self.deliver(steps)
        await self.store.write(self.settle(touched, refused))
        self.resend = []

    def decide(self, fact: XpFact, origin: tuple[int, int], steps: list[Step], touched: set[str], ahead: list,
               redrive: bool = False) -> None:
        """A fact newer than what is held becomes the held state, its record to write
        ahead and, when its xp changed, a step with its event. A re-driven one (`xpbank
        dead-letters redrive`) may be the revision held: what of it was refused is sent."""
        before = self.held.get(fact.factId)
        value = change(before.sent if before else None, fact)
        if value is None and redrive and (fact.generation, fact.revision) == (before.sent.generation, before.sent.revision):
            value = fact.xp - before.sent.xp
        if value is None:
            self.metrics.skipped["not newer"] += 1
            return
        sent, key = Sent(fact.generation, fact.revision, fact.xp), record_key(fact.factId, fact.generation, fact.revision)
        event = xp_earned_event(fact, value, self.settings.identity) if value else None
        if before is not None:
            self.stale[fact.factId] = (*self.stale.get(fact.factId, ()), before.key)
        self.held[fact.factId], self.partition_of[fact.factId] = Held(sent, key), origin[0]
        if event is not None or before is not None:  # else its record is written once, as it stays
            touched.add(fact.factId)
        ahead.append((origin[0], key, record_value(fact.factId, sent, event, origin)))
        if event is None:
            self.metrics.skipped["no change"] += 1
        else:
            steps.append(Step(fact.factId, origin[0], event, origin))

    def settle(self, touched: set[str], refused: dict[str, int]) -> list:
        """The store's records once the batch is delivered: each touched factId's latest
        record without an event (less the xp refused for good), then tombstones for its
        older records."""
        records = []
        for fact_id in sorted(touched):
            state, partition = self.held[fact_id], self.partition_of[fact_id]
            sent = Sent(state.sent.generation, state.sent.revision, state.sent.xp - refused.get(fact_id, 0))
            self.held[fact_id] = Held(sent, state.key)
            records.append((partition, state.key, record_value(fact_id, sent, None)))
            records.extend((partition, key, None) for key in dict.fromkeys(self.stale.pop(fact_id, ()))
                           if key != state.key)
        return records

    async def deliver(self, steps: list[Step]) -> dict[str, int]:
        """POST every step's event; returns the xpEarned refused for good, per factId."""
        refused: dict[str, int] = defaultdict(int)
        async with asyncio.TaskGroup() as group:
            for chunk in batches(steps, self.settings.batch_size):
                group.create_task(self.post(chunk, refused))
        return refused

    async def post(self, chunk: list[Step], refused: dict[str, int]) -> None:
        body = self.body(chunk)
        reply = await self.client.deliver("POST", self.settings.url, body)
        if 200 <= reply.status < 300:
            self.metrics.written += len(chunk)
            self.metrics.xp_earned += sum(xp_earned(step.event) for step in chunk)
            return
        if len(chunk) > 1:  # refused for good: which of its events is refused?
            for step in chunk:
                await self.post([step], refused)
            return
        [step] = chunk
        extensions = step.event.get("extensions", {})
        identity = (step.fact_id, extensions.get("generation"), extensions.get("revision"))
        await self.dead_letters.refused(identity, step.origin, "POST", self.settings.url, body, reply.status, reply.body)
        refused[step.fact_id] += xp_earned(step.event)

    def body(self, chunk: list[Step]) -> bytes:
        now = format_time(datetime.now(UTC))
        return orjson.dumps(envelope([step.event for step in chunk], self.settings.sensor, now))
