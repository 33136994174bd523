"""The write-back sinks' dead letters (`xp.sink-dead-letters.v1`) as a re-drive source.

A sink dead letter names the fact record a sink could not deliver for good. Re-driving it
sends the fact's *current* record again onto `xp.facts.v1` (its greatest generation and
revision, as `xpbank facts` reads it), marked with the re-drive header: the sink that
refused it writes it this time (the OneRoster sink PUTs it, the Caliper sink sends the
change since what the server holds), and no other consumer sees anything new (it is not
greater than what they hold). The current record, never the refused one, goes back: on
a compacted topic, an older revision republished last would outlive the newer one."""

from __future__ import annotations

import orjson

from xpbank.contract.topics import FACTS, SINK_DEAD_LETTERS
from xpbank.kafka.redrive import Letter

Current = dict[str, tuple[bytes, dict, int | None]]  # factId -> (record value, fact, record timestamp ms)


async def current_facts(settings) -> Current:
    """The current record of every factId on `xp.facts.v1` (greatest generation, revision)."""
    from xpbank.kafka.admin import Admin
    from xpbank.kafka.clients import read_topic

    name = settings.topic_prefix + FACTS
    found: Current = {}
    if not await Admin(settings).partitions([name]):
        return found
    async for message in read_topic(settings, name):
        if message.value is None:
            continue
        fact = orjson.loads(message.value)
        held = found.get(fact["factId"])
        if held is None or (fact["generation"], fact["revision"]) > (held[1]["generation"], held[1]["revision"]):
            found[fact["factId"]] = (message.value, fact, message.timestamp)
    return found


class SinkLetters:
    topic = SINK_DEAD_LETTERS

    def __init__(self, current: Current) -> None:
        self.current = current

    def letter(self, message, prefix: str) -> Letter | None:
        try:
            doc = orjson.loads(message.value) if message.value is not None else None
            fact_id = doc["factId"]
            value, fact, timestamp = self.current.get(fact_id, (None, {}, None)) if fact_id else (None, {}, None)
            return Letter(
                topic=message.topic, partition=message.partition, offset=message.offset,
                reason=str(doc["reason"]), detail=f"{doc['sink']}: {doc.get('detail') or ''}",
                original=prefix + str(doc["topic"]), original_partition=doc.get("partition"),
                original_offset=doc.get("offset"), key=None if fact_id is None else fact_id.encode("utf-8"),
                value=value, timestamp_ms=timestamp if timestamp is not None else message.timestamp,
                users=(fact["userSourcedId"],) if fact else (), document=doc)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return None  # not a sink dead letter of ours

    def target(self, letter: Letter, prefix: str) -> tuple[str | None, str]:
        if letter.reason == "unreadable_fact":
            return None, "the fact record was unreadable: there is nothing to write back"
        if letter.value is None:
            return None, "the fact is no longer on xp.facts.v1"
        return prefix + FACTS, ""
