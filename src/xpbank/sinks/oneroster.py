"""`xpbank sink oneroster`: each current fact of the configured kinds becomes one OneRoster
1.2 assessment result (SPEC §3.7), PUT after reading the held result (its metadata and
fields that are not xpbank's survive; a result already written from this or a newer
revision of the fact is left alone). A batch writes each result once, with its
greatest (generation, revision), and a result's GET and PUT follow each other: requests
for one result keep their order, requests for different results go out concurrently."""

from __future__ import annotations

import asyncio
import logging

import orjson

from xpbank.contract.outputs import XpFact
from xpbank.sinks.consumer import Batch
from xpbank.sinks.dead_letters import DeadLetters, read_fact
from xpbank.sinks.gradebook import already_written, latest_per_result, result_body, result_url
from xpbank.sinks.http import Client, Reply
from xpbank.sinks.metrics import SinkMetrics
from xpbank.sinks.settings import OneRosterSettings

log = logging.getLogger("xpbank.sinks")


def held_result(reply: Reply) -> tuple[bool, dict | None]:
    """(readable, the held result): 404 is none; a 2xx must carry an assessmentResult."""
    if reply.status == 404:
        return True, None
    try:
        doc = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        return False, None
    result = doc.get("assessmentResult") if isinstance(doc, dict) else None
    return isinstance(result, dict), result


class OneRosterSink:
    pending = False  # nothing held over between batches: the gradebook itself says what is written

    def __init__(self, settings: OneRosterSettings, client: Client, dead_letters: DeadLetters,
                 metrics: SinkMetrics) -> None:
        self.settings, self.client, self.dead_letters, self.metrics = settings, client, dead_letters, metrics

    async def assigned(self, partitions: list[int]) -> None:
        return None

    async def revoked(self, partitions: list[int]) -> None:
        return None

    async def handle(self, batch: Batch) -> None:
        wanted, where = [], {}
        for partition, records in batch.items():
            for record in records:
                fact = await read_fact(record, partition, self.dead_letters)
                if fact is None:
                    continue
                if fact.kind not in self.settings.kinds:
                    self.metrics.skipped["kind"] += 1
                    continue
                sourced_id = self.settings.naming.result_id(fact)
                wanted.append((sourced_id, fact))
                where[(sourced_id, fact.factId, fact.generation, fact.revision)] = (partition, record.offset)
        latest = latest_per_result(wanted)
        self.metrics.skipped["superseded"] += len(wanted) - len(latest)
        async with asyncio.TaskGroup() as group:
            for sourced_id, fact in latest.items():
                spot = where[(sourced_id, fact.factId, fact.generation, fact.revision)]
                group.create_task(self.write(sourced_id, fact, spot))

    async def write(self, sourced_id: str, fact: XpFact, where: tuple[int, int]) -> None:
        url = result_url(self.settings.url, sourced_id)
        identity = (fact.factId, fact.generation, fact.revision)
        got = await self.client.deliver("GET", url)
        readable, held = held_result(got)
        if not readable:
            await self.dead_letters.refused(identity, where, "GET", url, None, got.status, got.body)
            return
        if already_written(held, fact):
            self.metrics.skipped["already written"] += 1
            return
        body = orjson.dumps(result_body(fact, self.settings.naming, held))
        put = await self.client.deliver("PUT", url, body)
        if 200 <= put.status < 300:
            self.metrics.written += 1
        else:
            await self.dead_letters.refused(identity, where, "PUT", url, body, put.status, put.body)
