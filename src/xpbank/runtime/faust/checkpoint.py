"""Faust's table writes, made cheap the way Quix Streams makes them: the learner agent
keeps a record's state changes in a cache, and at a checkpoint (every few hundred records
or a fraction of a second, when the stream goes idle, before partitions are revoked, and
at shutdown) waits for the broker to acknowledge every output sent since the last one,
then writes each changed key once: one changelog record, then one RocksDB batch per
partition. A Faust table write costs a changelog record and two RocksDB writes per call
(faust-streaming's `Table.__setitem__`); a checkpoint costs one changelog record per
changed key, and none for a key written again.

The order keeps the guarantees of the per-record path: outputs are acknowledged before
any state that follows from them is written, and the changelog before the local store,
so the store is never ahead of what another worker would recover. The agent's ledger
(continuity.py) is part of the state: after a crash the records since the last
checkpoint are read again and processed against the state they left.

This relies on faust-streaming 0.15.3 internals, pinned and kept here: the rocksdb
store's per-partition databases (`_dbs`, `_db_for_partition`) and the memory store's
dict (`data`), the table's changelog topic and `set_persisted_offset`, and the app
producer's `send`. tests/integration/test_faust_checkpoint.py checks that behaviour."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable

from faust.types import TP

log = logging.getLogger("xpbank")


class Checkpoint:
    def __init__(self, app, tables: dict, every_records: int = 500, every_seconds: float = 0.2) -> None:
        self.app = app
        self.tables = tables  # name -> faust.Table with bytes keys and values
        self.every_records, self.every_seconds = every_records, every_seconds
        self.changed: dict[tuple[str, bytes], tuple[int, bytes]] = {}  # (table, key) -> (partition, value)
        self.outputs: list[Awaitable] = []
        self.records = 0
        self.since: float | None = None
        self.lock = asyncio.Lock()  # a record is processed, or a checkpoint written, never both at once
        self.flushes = 0

    # ---- state, read through the cache -------------------------------------------------
    def get(self, table: str, key: bytes, partition: int) -> bytes | None:
        held = self.changed.get((table, key))
        if held is not None:
            return held[1]
        store = self.tables[table].data
        if hasattr(store, "_db_for_partition"):  # rocksdb: this partition's own database
            return store._db_for_partition(partition).get(key)  # noqa: SLF001
        return store.data.get(key)  # memory

    def put(self, table: str, key: bytes, value: bytes, partition: int) -> None:
        self.changed[(table, key)] = (partition, value)

    def sent(self, acknowledged: Awaitable) -> None:
        """An output sent now, to be acknowledged before the next checkpoint's state."""
        self.outputs.append(acknowledged)

    def record_done(self) -> None:
        self.records += 1
        if self.since is None:
            self.since = time.monotonic()

    @property
    def due(self) -> bool:
        return self.since is not None and (self.records >= self.every_records
                                           or time.monotonic() - self.since >= self.every_seconds)

    @property
    def pending(self) -> bool:
        return self.since is not None or bool(self.outputs) or bool(self.changed)

    # ---- the checkpoint ------------------------------------------------------------------
    async def flush(self) -> None:
        """Outputs acknowledged, then changelogs acknowledged, then the local stores.
        Call with `lock` held."""
        if not self.pending:
            return
        outputs, self.outputs = self.outputs, []
        if outputs:
            await asyncio.gather(*outputs)
        changed, self.changed = self.changed, {}
        self.records, self.since = 0, None
        if not changed:
            return
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
        self.flushes += 1

    def _write_stores(self, sends, written: dict[tuple[str, int], int]) -> None:
        batches: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
        for table, partition, key, value, _ in sends:
            batches.setdefault((table, partition), []).append((key, value))
        for (table, partition), items in batches.items():
            store = self.tables[table].data
            if hasattr(store, "_dbs"):  # rocksdb
                db = store._dbs.get(partition)  # noqa: SLF001 - a revoked partition's database is closed:
                if db is None:  # its next owner recovers this write from the changelog
                    continue
                from rocksdict import WriteBatch

                batch = WriteBatch(raw_mode=True)
                for key, value in items:
                    batch.put(key, value)
                db.write(batch)
            else:
                store.data.update(items)
            changelog = self.tables[table].changelog_topic.get_topic_name()
            store.set_persisted_offset(TP(changelog, partition), written[(table, partition)])
