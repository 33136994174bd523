"""Faust's table writes, made cheap the way Quix Streams makes them: the processing unit
keeps each learner partition's values decoded between checkpoints (runtime/unit.py), and
at a checkpoint (every few hundred records or a fraction of a second; after a record with
outputs, at once if no record waits behind it, else within 10 ms; when the stream goes
idle, before partitions are revoked, and at shutdown) writes each changed key once: one
changelog record, then one RocksDB batch per partition. A Faust table write costs a
changelog record and two RocksDB writes per call (faust-streaming's `Table.__setitem__`);
a checkpoint costs one changelog record per changed key, and none for a key written again.

A checkpoint is durable once the broker acknowledged its changelog records; the local
store is written after, so it is never ahead of what another worker would recover. A
record's outputs wait in the partition's outbox (the policy is runtime/outbox.py's),
written with the state, and are published once the checkpoint is durable; the outbox
is then emptied.
Re-keyed copies go out at once and are acknowledged before the state that records them.
The agent's ledger (continuity.py) is part of the state: after a crash the records since
the last checkpoint are read again and processed against the state they left, and the
outbox a crash left is published by the partition's next owner.

The stores' per-partition databases are reached through `internals` (faust-streaming's
private names live there); the table's changelog topic, `set_persisted_offset` and the
app producer's `send` are public. The crash, scale-out and lost-disk tests in
tests/e2e/test_crash_and_scale_out.py check the behaviour it relies on."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from faust.types import TP

from xpbank.processing.learner_state import OUTBOX_PREFIX, full_key, outbox_key
from xpbank.processing.upcast import ReadThrough, faust_v1
from xpbank.runtime import outbox
from xpbank.runtime.faust import internals
from xpbank.runtime.outbox import Item, Outbox
from xpbank.runtime.engines import FAUST_TABLE

log = logging.getLogger("xpbank")


class TablePort:
    """One partition of the state table, read through the checkpoint's cache (and, where
    the faust-v1 tables exist, through them: processing/upcast.py)."""

    __slots__ = ("checkpoint", "partition")

    def __init__(self, checkpoint: Checkpoint, partition: int) -> None:
        self.checkpoint, self.partition = checkpoint, partition

    def get_bytes(self, key: bytes, prefix: bytes) -> bytes | None:
        return self.checkpoint.get(FAUST_TABLE, full_key(prefix, key), self.partition)

    def set_bytes(self, key: bytes, value: bytes, prefix: bytes) -> None:
        self.checkpoint.changed[full_key(prefix, key)] = (self.partition, value)


class States(Protocol):
    """The learner partitions' state kept between checkpoints (runtime/unit.py's)."""

    def write_back(self, port_of: Callable[[int], TablePort | ReadThrough]) -> int: ...
    def forget(self, partitions: set[int]) -> None: ...


class Checkpoint:
    def __init__(self, app, tables: dict, outbox_policy: Outbox, states: States, every_records: int = 500,
                 every_seconds: float = 0.2) -> None:
        self.app = app
        self.tables = tables  # name -> faust.Table with bytes keys and values: the state table, and faust-v1's if any
        self.outbox = outbox_policy
        self.states = states
        self.every_records, self.every_seconds = every_records, every_seconds
        self.changed: dict[bytes, tuple[int, bytes]] = {}  # key of the state table -> (partition, value)
        self.copies: list[list] = []  # re-keyed copies [acknowledgement or None, resend]: acknowledged before the state
        self.records = 0
        self.since: float | None = None
        self.latency = None  # an observe.latency.Histogram: record timestamp -> outputs acknowledged
        self.lock = asyncio.Lock()  # a record is processed, or a checkpoint written, never both at once
        self.flushes = 0

    # ---- state, read through the cache -------------------------------------------------
    def port(self, partition: int):
        port = TablePort(self, partition)
        if len(self.tables) == 1:
            return port
        return ReadThrough(port, faust_v1(lambda table, key: self.get(table, key, partition)))

    def get(self, table: str, key: bytes, partition: int) -> bytes | None:
        if table == FAUST_TABLE:
            held = self.changed.get(key)
            if held is not None:
                return held[1]
        return internals.read_key(self.tables[table].data, partition, key)

    def sent(self, acknowledged: Awaitable | None, resend: Callable[[], Awaitable[Awaitable]]) -> None:
        """A re-keyed copy sent now (or not yet: None), to be acknowledged before the next
        checkpoint's state; `resend` sends it again should it fail (a copy sent twice is recognised)."""
        self.copies.append([acknowledged, resend])

    def record_done(self) -> None:
        self.records += 1
        if self.since is None:
            self.since = time.monotonic()

    def due(self, idle: bool) -> bool:
        """A checkpoint to write now: held outputs past the outbox's window, or at once
        when `idle` (no record waits behind this one); else by the records or the time
        since the last one."""
        if self.outbox.due(idle):
            return True
        return self.since is not None and (
            self.records >= self.every_records or time.monotonic() - self.since >= self.every_seconds)

    @property
    def pending(self) -> bool:
        return self.since is not None or bool(self.copies) or bool(self.changed) or self.outbox.pending

    # ---- the checkpoint ------------------------------------------------------------------
    async def flush(self) -> None:
        """Copies acknowledged; the changelog (state and outboxes) acknowledged: durable;
        the local stores; then the outboxes published. Call with `lock` held. A failure
        (the broker away) forgets nothing: the next flush writes and publishes it all again
        (the same keys and values, the same outputs)."""
        if not self.pending:
            return
        await self._copies_acknowledged()
        self.states.write_back(self.port)  # into `changed`, where a failed flush keeps them
        changed = dict(self.changed)
        for partition, value in self.outbox.writes().items():
            changed[full_key(OUTBOX_PREFIX, outbox_key(partition))] = (partition, value)
        if changed:
            await self._write(changed)
        self.changed, self.records, self.since = {}, 0, None
        held = self.outbox.durable()
        if held:
            await self.publish(held)
        self.flushes += 1

    async def _copies_acknowledged(self) -> None:
        """Every re-keyed copy acknowledged; one that failed is sent again, and the
        failure raised (the next flush waits for the new send)."""
        failed = None
        for entry in self.copies:
            if entry[0] is None:
                entry[0] = await entry[1]()
        results = await asyncio.gather(*(entry[0] for entry in self.copies), return_exceptions=True)
        for entry, result in zip(self.copies, results):
            if isinstance(result, BaseException):
                entry[0], failed = None, result
        if failed is not None:
            raise failed
        self.copies = []

    async def settle(self) -> None:
        """A checkpoint, and one more that empties the outboxes it published: before a
        revocation or a stop, so that the next owner finds nothing to publish again."""
        await self.flush()
        if self.outbox.emptied:
            await self.flush()

    async def send(self, items: list[Item]) -> None:
        """Send outputs and wait for the broker to take them."""
        producer = self.app.producer
        sends = [await producer.send(topic, key, value, None, None if ts is None else ts / 1000, None)
                 for topic, key, value, ts in items]
        await asyncio.gather(*sends)
        if self.latency is not None:
            self.latency.observe_since(ts for _, _, _, ts in items)

    async def publish(self, held: dict[int, list[Item]]) -> None:
        """Send the outboxes' outputs; the next checkpoint empties them."""
        await self.send([item for items in held.values() for item in items])
        self.outbox.published(held)

    async def recover(self, partition: int) -> int:
        """Publish what a stop left in a partition's outbox before anything else of the
        partition is (the same outputs: same ids and values). Call with `lock` held."""
        self.outbox.recovered(partition)
        items = outbox.read(self.port(partition), partition)
        if items:
            await self.publish({partition: items})
            log.warning("published the outbox a stop left on partition %d: %d outputs", partition, len(items))
        return len(items)

    def forget(self, partitions: set[int]) -> None:
        """Partitions revoked: their outboxes and state are their next owner's. What a
        failed last checkpoint left of them is dropped: the next owner reads those records
        again from the committed offsets (it must never reach their changelogs from here)."""
        self.outbox.forget(partitions)
        self.states.forget(partitions)
        self.changed = {key: value for key, value in self.changed.items() if value[0] not in partitions}

    async def _write(self, changed: dict[bytes, tuple[int, bytes]]) -> None:
        producer = self.app.producer
        topic = self.tables[FAUST_TABLE].changelog_topic.get_topic_name()
        sends = [(partition, key, value, await producer.send(topic, key, value, partition, None, None))
                 for key, (partition, value) in changed.items()]
        written: dict[int, int] = {}
        for partition, _, _, acknowledged in sends:
            metadata = await acknowledged
            written[partition] = max(written.get(partition, -1), metadata.offset)
        self._write_stores(sends, written, topic)

    def _write_stores(self, sends, written: dict[int, int], changelog: str) -> None:
        batches: dict[int, list[tuple[bytes, bytes]]] = {}
        for partition, key, value, _ in sends:
            batches.setdefault(partition, []).append((key, value))
        store = self.tables[FAUST_TABLE].data
        for partition, items in batches.items():
            if not internals.write_batch(store, partition, items):  # revoked: its next owner
                continue  # recovers this write from the changelog
            store.set_persisted_offset(TP(changelog, partition), written[partition])
