"""Outputs wait in the state until the state they follow from is durable (the outbox).

A learner's records arrive on several topics (heartbeats, submissions, masteries), and
after a crash the records processed since the last checkpoint are read again in an
order that can differ from the first: a mastery can meet heartbeats it did not meet the
first time. Had its award already been published, the same award id would now come with
another value. So an engine keeps a record's outputs with its state: they reach the
changelog (or Quix's committed state) with the state, and are published only once it is
durable. A crash before that loses nothing that was published: the records are processed
again and their outputs decided again. A crash after it publishes the outbox again when
the partition is taken over: the same outputs, the same ids and values.

The outbox a checkpoint makes durable replaces the partition's previous one, which was
published before this checkpoint began; so the durable outbox is either unpublished or
the partition's latest published outputs, and publishing it again changes nothing a
consumer keeps (the same ids and values, still the latest for their keys)."""

from __future__ import annotations

import orjson

from xpbank.contract import codec
from xpbank.contract.records import OutputRecord

# a partition's outbox lives in that partition under a key no learner's key can be (they
# never start with NUL); Faust's tables are one keyspace, so there the key names the partition
OUTBOX_KEY = b"\x00outbox"
_VERSION = 1


def key(partition: int) -> bytes:
    return OUTBOX_KEY + b":%d" % partition


def pending(outputs: list[OutputRecord], prefix: str) -> list[tuple[str, bytes | None, bytes, int | None]]:
    """Outputs as they are sent: (topic on the broker, key, value, timestamp in ms)."""
    return [(prefix + out.topic, None if out.key is None else out.key.encode("utf-8"), codec.encode(out.value),
             None if out.timestamp is None else int(out.timestamp.timestamp() * 1000)) for out in outputs]


def encode(items: list[tuple[str, bytes | None, bytes, int | None]]) -> bytes:
    body = [[topic, None if key is None else key.decode("utf-8"), value.decode("utf-8"), ts]
            for topic, key, value, ts in items]
    return bytes([_VERSION]) + orjson.dumps(body)


def decode(raw: bytes | None) -> list[tuple[str, bytes | None, bytes, int | None]]:
    if not raw:
        return []
    if raw[0] != _VERSION:
        raise ValueError(f"outbox version {raw[0]} is not supported")
    return [(topic, None if key is None else key.encode("utf-8"), value.encode("utf-8"), ts)
            for topic, key, value, ts in orjson.loads(raw[1:])]
