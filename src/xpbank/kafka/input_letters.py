"""The dead letters of the worker (`xp.dead-letters.v1`) as a re-drive source: each
names the input record it rejected, whose payload it carries (base64 when not UTF-8);
a re-drive sends that record back to its input topic."""

from __future__ import annotations

import base64

import orjson

from xpbank.contract.times import parse_time
from xpbank.contract.topics import CURRICULUM, DEAD_LETTERS, INPUTS, base_name
from xpbank.kafka.redrive import Letter, users_of


class InputLetters:
    topic = DEAD_LETTERS

    def letter(self, message, prefix: str) -> Letter | None:
        if message.value is None:
            return None
        try:
            doc = orjson.loads(message.value)
            payload = doc.get("payload")
            value = None if payload is None else (
                base64.b64decode(payload) if doc.get("payloadEncoding") == "base64" else payload.encode("utf-8"))
            timestamp = doc.get("timestamp")
            return Letter(
                topic=message.topic, partition=message.partition, offset=message.offset,
                reason=str(doc["reason"]), detail=str(doc.get("detail") or ""), original=str(doc["topic"]),
                original_partition=doc.get("partition"), original_offset=doc.get("offset"),
                key=None if doc.get("key") is None else str(doc["key"]).encode("utf-8"), value=value,
                timestamp_ms=None if timestamp is None else int(parse_time(timestamp).timestamp() * 1000),
                # a payload that names nobody (not JSON, say): its key, which is the learner's most often
                users=users_of(value) or ((doc["key"],) if doc.get("key") else ()), document=doc)
        except (orjson.JSONDecodeError, KeyError, ValueError, AttributeError, TypeError):
            return None  # not a dead letter of ours: `list` shows nothing for it, `redrive` never sends it

    def target(self, letter: Letter, prefix: str) -> tuple[str | None, str]:
        name = base_name(letter.original, prefix)
        if name not in INPUTS or prefix + name != letter.original:
            return None, f"{letter.original} is not an input topic of this deployment"
        if name == CURRICULUM:  # a course record replaces the course: an old one would undo a newer one
            return None, "curriculum records are not re-driven: publish the course again"
        if letter.value is None:
            return None, "no payload to send"
        return letter.original, ""


INPUT_LETTERS = InputLetters()
