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

import time
from collections.abc import Sequence

import orjson

from xpbank.contract import codec
from xpbank.contract.records import OutputRecord
from xpbank.processing.learner_state import OUTBOX_PREFIX, StatePort, outbox_key
from xpbank.runtime.failpoints import Failpoint

OUTPUTS_WITHIN = 0.01  # seconds: held outputs make a checkpoint due this soon
_VERSION = 1
Item = tuple[str, bytes | None, bytes, int | None]  # (topic on the broker, key, value, timestamp in ms)


def pending(outputs: Sequence[OutputRecord], prefix: str) -> list[Item]:
    """Outputs as they are sent: (topic on the broker, key, value, timestamp in ms)."""
    return [(prefix + out.topic, None if out.key is None else out.key.encode("utf-8"), codec.encode(out.value),
             None if out.timestamp is None else int(out.timestamp.timestamp() * 1000)) for out in outputs]


def encode(items: list[Item]) -> bytes:
    body = [[topic, None if key is None else key.decode("utf-8"), value.decode("utf-8"), ts]
            for topic, key, value, ts in items]
    return bytes([_VERSION]) + orjson.dumps(body)


def decode(raw: bytes | None) -> list[Item]:
    if not raw:
        return []
    if raw[0] != _VERSION:
        raise ValueError(f"outbox version {raw[0]} is not supported")
    return [(topic, None if key is None else key.encode("utf-8"), value.encode("utf-8"), ts)
            for topic, key, value, ts in orjson.loads(raw[1:])]


def read(port: StatePort, partition: int) -> list[Item]:
    return decode(port.get_bytes(outbox_key(partition), prefix=OUTBOX_PREFIX))


def write(port: StatePort, partition: int, value: bytes) -> None:
    port.set_bytes(outbox_key(partition), value, prefix=OUTBOX_PREFIX)


class Outbox:
    """The outbox policy both engines follow (they differ only in how a checkpoint is
    written and how outputs are sent):

    - a record's outputs are held for its partition (`hold`); a checkpoint is due
      within OUTPUTS_WITHIN of the first held output, or at once when the consumer idles;
    - the checkpoint writes `writes()`: each held partition's outbox, and an empty one
      for each partition whose outbox was published since the last checkpoint;
    - once it is durable, `durable()` hands over what to publish (after the crash
      failpoint), and `published()` records it once the broker took it;
    - a partition assigned is `unrecovered` until what a stop left in its outbox is
      published (`recovered`), before any of its records is processed."""

    def __init__(self, failpoint: Failpoint | None = None, within: float = OUTPUTS_WITHIN) -> None:
        self.failpoint = Failpoint() if failpoint is None else failpoint
        self.within = within
        self.held: dict[int, list[Item]] = {}
        self.held_since: float | None = None
        self.emptied: set[int] = set()  # published: their outbox is emptied by the next checkpoint
        self.unrecovered: set[int] = set()

    def hold(self, partition: int, items: list[Item]) -> None:
        if items:
            self.held.setdefault(partition, []).extend(items)
            if self.held_since is None:
                self.held_since = time.monotonic()

    def due(self, idle: bool) -> bool:
        return bool(self.held) and (idle or time.monotonic() - self.held_since >= self.within)

    @property
    def pending(self) -> bool:
        return bool(self.held) or bool(self.emptied)

    def writes(self) -> dict[int, bytes]:
        """The outboxes a checkpoint writes now (partition -> value)."""
        values = {partition: b"" for partition in self.emptied - self.held.keys()}
        values.update((partition, encode(items)) for partition, items in self.held.items())
        return values

    def durable(self) -> dict[int, list[Item]]:
        """The checkpoint that wrote `writes()` is durable: what to publish now. The
        failpoint ends the process here: durable, not yet published (the next owner publishes it)."""
        held = self.held
        self.held, self.held_since, self.emptied = {}, None, set()
        if held and self.failpoint.hit():
            self.failpoint.crash()
        return held

    def published(self, partitions) -> None:
        self.emptied.update(partitions)

    def recovered(self, partition: int) -> None:
        self.unrecovered.discard(partition)

    def forget(self, partitions: set[int]) -> None:
        """Partitions gone without a last checkpoint: their outboxes are their next owner's."""
        self.emptied -= partitions
        self.unrecovered -= partitions
        self.held = {partition: items for partition, items in self.held.items() if partition not in partitions}
