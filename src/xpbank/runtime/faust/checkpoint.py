"""Faust's table writes, made cheap the way Quix Streams makes them: the learner agent
keeps a record's state changes in a cache, and at a checkpoint (every few hundred records
or a fraction of a second, within 10 ms of a record with outputs, when the stream goes
idle, before partitions are revoked, and at shutdown) writes each changed key once: one
changelog record, then one RocksDB batch per partition. A Faust table write costs a
changelog record and two RocksDB writes per call (faust-streaming's `Table.__setitem__`);
a checkpoint costs one changelog record per changed key, and none for a key written again.

A checkpoint is durable once the broker acknowledged its changelog records; the local
store is written after, so it is never ahead of what another worker would recover. A
record's outputs wait in the partition's outbox (runtime/outbox.py), written with the
state, and are published once the checkpoint is durable; the outbox is then emptied.
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

from faust.types import TP

from xpbank.runtime import outbox
from xpbank.runtime.faust import internals

log = logging.getLogger("xpbank")
OUTBOX_TABLE = "positions"  # the outbox of a partition is a key of its positions table


class Checkpoint:
    def __init__(self, app, tables: dict, every_records: int = 500, every_seconds: float = 0.2,
                 outputs_within: float = 0.01) -> None:
        self.app = app
        self.tables = tables  # name -> faust.Table with bytes keys and values
        self.every_records, self.every_seconds, self.outputs_within = every_records, every_seconds, outputs_within
        self.changed: dict[tuple[str, bytes], tuple[int, bytes]] = {}  # (table, key) -> (partition, value)
        self.outputs: list[list] = []  # re-keyed copies [acknowledgement or None, resend]: acknowledged before the state
        self.held: dict[int, list] = {}  # partition -> outputs waiting for this checkpoint
        self.published: set[int] = set()  # partitions whose durable outbox is published: emptied next time
        self.unrecovered: set[int] = set()  # assigned partitions whose outbox is not looked at yet
        self.held_since: float | None = None
        self.records = 0
        self.since: float | None = None
        self.failpoint = None
        self.latency = None  # a read.latency.Histogram: record timestamp -> outputs acknowledged
        self.lock = asyncio.Lock()  # a record is processed, or a checkpoint written, never both at once
        self.flushes = 0

    # ---- state, read through the cache -------------------------------------------------
    def get(self, table: str, key: bytes, partition: int) -> bytes | None:
        held = self.changed.get((table, key))
        if held is not None:
            return held[1]
        return internals.read_key(self.tables[table].data, partition, key)

    def put(self, table: str, key: bytes, value: bytes, partition: int) -> None:
        self.changed[(table, key)] = (partition, value)

    def sent(self, acknowledged: Awaitable, resend: Callable[[], Awaitable[Awaitable]]) -> None:
        """A re-keyed copy sent now, to be acknowledged before the next checkpoint's state;
        `resend` sends it again should it fail (a copy sent twice is recognised)."""
        self.outputs.append([acknowledged, resend])

    def hold(self, partition: int, items: list) -> None:
        """A record's outputs: into the partition's outbox, written with its state."""
        if items:
            self.held.setdefault(partition, []).extend(items)
            if self.held_since is None:
                self.held_since = time.monotonic()

    def record_done(self) -> None:
        self.records += 1
        if self.since is None:
            self.since = time.monotonic()

    @property
    def due(self) -> bool:
        now = time.monotonic()
        if self.held_since is not None and now - self.held_since >= self.outputs_within:
            return True
        return self.since is not None and (self.records >= self.every_records or now - self.since >= self.every_seconds)

    @property
    def pending(self) -> bool:
        return (self.since is not None or bool(self.outputs) or bool(self.changed) or bool(self.held)
                or bool(self.published))

    # ---- the checkpoint ------------------------------------------------------------------
    async def flush(self) -> None:
        """Copies acknowledged; the changelog (state and outboxes) acknowledged: durable;
        the local stores; then the outboxes published. Call with `lock` held. A failure
        (the broker away) forgets nothing: the next flush writes and publishes it all again
        (the same keys and values, the same outputs)."""
        if not self.pending:
            return
        await self._copies_acknowledged()
        changed, held = dict(self.changed), {partition: list(items) for partition, items in self.held.items()}
        for partition in self.published - held.keys():  # published last time: emptied with this state
            changed[(OUTBOX_TABLE, outbox.key(partition))] = (partition, b"")
        for partition, items in held.items():
            changed[(OUTBOX_TABLE, outbox.key(partition))] = (partition, outbox.encode(items))
        if changed:
            await self._write(changed)
        self.changed, self.published, self.records, self.since = {}, set(), 0, None
        if held:
            if self.failpoint is not None and self.failpoint.hit():
                self.failpoint.crash()  # durable, not yet published: the next owner publishes it
            await self.publish(held)
        self.held, self.held_since = {}, None
        self.flushes += 1

    async def _copies_acknowledged(self) -> None:
        """Every re-keyed copy acknowledged; one that failed is sent again, and the
        failure raised (the next flush waits for the new send)."""
        failed = None
        for entry in self.outputs:
            if entry[0] is None:
                entry[0] = await entry[1]()
        results = await asyncio.gather(*(entry[0] for entry in self.outputs), return_exceptions=True)
        for entry, result in zip(self.outputs, results):
            if isinstance(result, BaseException):
                entry[0], failed = None, result
        if failed is not None:
            raise failed
        self.outputs = []

    async def settle(self) -> None:
        """A checkpoint, and one more that empties the outboxes it published: before a
        revocation or a stop, so that the next owner finds nothing to publish again."""
        await self.flush()
        if self.published:
            await self.flush()

    async def publish(self, held: dict[int, list]) -> None:
        """Send the outboxes' outputs and wait for the broker; the next checkpoint empties them."""
        producer = self.app.producer
        sends = [await producer.send(topic, key, value, None, None if ts is None else ts / 1000, None)
                 for items in held.values() for topic, key, value, ts in items]
        await asyncio.gather(*sends)
        self.published.update(held)
        if self.latency is not None:
            self.latency.observe_since(ts for items in held.values() for _, _, _, ts in items)

    async def recover(self, partition: int) -> int:
        """Publish what a stop left in a partition's outbox before anything else of the
        partition is (the same outputs: same ids and values). Call with `lock` held."""
        self.unrecovered.discard(partition)
        items = outbox.decode(self.get(OUTBOX_TABLE, outbox.key(partition), partition))
        if items:
            await self.publish({partition: items})
            log.warning("published the outbox a stop left on partition %d: %d outputs", partition, len(items))
        return len(items)

    def forget(self, partitions: set[int]) -> None:
        """Partitions revoked: their outboxes and state are their next owner's. What a
        failed last checkpoint left of them is dropped: the next owner reads those records
        again from the committed offsets (it must never reach their changelogs from here)."""
        self.published -= partitions
        self.unrecovered -= partitions
        self.changed = {key: value for key, value in self.changed.items() if value[0] not in partitions}
        self.held = {partition: items for partition, items in self.held.items() if partition not in partitions}

    async def _write(self, changed: dict[tuple[str, bytes], tuple[int, bytes]]) -> None:
        producer = self.app.producer
        sends = []
        for (table, key), (partition, value) in changed.items():
            topic = self.tables[table].changelog_topic.get_topic_name()
            sends.append((table, partition, key, value,
                          await producer.send(topic, key, value, partition, None, None)))
        written: dict[tuple[str, int], int] = {}
        for table, partition, _, _, acknowledged in sends:
            metadata = await acknowledged
            written[(table, partition)] = max(written.get((table, partition), -1), metadata.offset)
        self._write_stores(sends, written)

    def _write_stores(self, sends, written: dict[tuple[str, int], int]) -> None:
        batches: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
        for table, partition, key, value, _ in sends:
            batches.setdefault((table, partition), []).append((key, value))
        for (table, partition), items in batches.items():
            store = self.tables[table].data
            if not internals.write_batch(store, partition, items):  # revoked: its next owner
                continue  # recovers this write from the changelog
            changelog = self.tables[table].changelog_topic.get_topic_name()
            store.set_persisted_offset(TP(changelog, partition), written[(table, partition)])
