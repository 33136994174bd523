"""Facts a sink could not deliver for good go to `xp.sink-dead-letters.v1` (key: the
factId) with the request and the response, acknowledged by the broker before the sink
commits past them. Request headers are never kept: they carry the credentials."""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from xpbank.contract.codec import encode
from xpbank.contract.outputs import SINK_BODY_LIMIT, SinkDeadLetter, SinkRequest, SinkResponse, XpFact
from xpbank.contract.topics import FACTS, SINK_DEAD_LETTERS
from xpbank.sinks.metrics import SinkMetrics

log = logging.getLogger("xpbank.sinks")


def _cut(text: str | None) -> str | None:
    return None if text is None else text[:SINK_BODY_LIMIT]


class DeadLetters:
    def __init__(self, producer: AIOKafkaProducer, prefix: str, sink: str, metrics: SinkMetrics) -> None:
        self.producer, self.topic, self.sink, self.metrics = producer, prefix + SINK_DEAD_LETTERS, sink, metrics

    async def refused(self, fact: tuple[str, int, int], where: tuple[int, int], method: str, url: str,
                      body: bytes | None, status: int, answer: str) -> None:
        """`fact`: (factId, generation, revision); `where`: its record's (partition, offset)."""
        request = SinkRequest(method=method, url=url, body=_cut(body.decode() if body is not None else None))
        await self._send(SinkDeadLetter(
            sink=self.sink, reason="refused", detail=f"{method} answered {status}: refused for good",
            factId=fact[0], generation=fact[1], revision=fact[2], topic=FACTS, partition=where[0], offset=where[1],
            request=request, response=SinkResponse(status=status, body=_cut(answer))))

    async def unreadable(self, where: tuple[int, int], key: bytes | None, detail: str) -> None:
        await self._send(SinkDeadLetter(
            sink=self.sink, reason="unreadable_fact", detail=detail[:500],
            factId=key.decode("utf-8", "replace") if key is not None else None, generation=None, revision=None,
            topic=FACTS, partition=where[0], offset=where[1], request=None, response=None))

    async def _send(self, letter: SinkDeadLetter) -> None:
        key = letter.factId.encode() if letter.factId is not None else None
        await self.producer.send_and_wait(self.topic, encode(letter), key=key)
        self.metrics.dead_letters += 1
        log.warning("sink %s dead-lettered %s (%s) topic=%s partition=%d offset=%d: %s", self.sink, letter.factId,
                    letter.reason, letter.topic, letter.partition, letter.offset, letter.detail)


async def read_fact(record, partition: int, dead_letters: DeadLetters) -> XpFact | None:
    """The record's fact; a tombstone is nothing, an unreadable record a dead letter."""
    if record.value is None:
        return None
    try:
        return XpFact.model_validate_json(record.value)
    except ValidationError as exc:
        await dead_letters.unreadable((partition, record.offset), record.key, f"not an XpFact: {exc}")
        return None
