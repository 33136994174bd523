"""Every touch point on faust-streaming's and mode-streaming's private names, in one
place. Each was read from the pinned versions below (pyproject.toml pins them) and is
covered by tests/unit/test_faust_internals.py, which fails when the library changes
under it; no other module of src/ names a private attribute of faust or mode.

| touch point | read from | why |
|---|---|---|
| `Store._db_for_partition(partition)` | faust/stores/rocksdb.py | a checkpoint reads a key from its partition's own database |
| `Store._dbs` | faust/stores/rocksdb.py | a checkpoint writes one batch per partition; a revoked partition's database is gone |
| `Consumer._commit_offsets(offsets)` | faust/transport/consumer.py | the take-over commits through Faust's own commit path |
| `Worker._schedule_shutdown(signal)`, `Worker._signal_stop_time` | mode/worker.py | a stop is bounded from the first signal |
| `Table._new_store_by_url(url)`, `Store.assign_partitions(table, tps, generation_id)`, `Store.offset_key` | faust/tables/base.py, faust/stores/rocksdb.py | a newly assigned changelog partition is restored in bulk before Faust's recovery reads it (runtime/faust/restore.py) |
| `confluent_kafka.KafkaError._PARTITION_EOF` | confluent-kafka (librdkafka's documented code, named with an underscore) | the bulk restore knows a partition's end even when a transaction marker holds its last offset |
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

FAUST_VERSION = "0.15.3"
MODE_VERSION = "0.7.1"


def is_rocksdb(store) -> bool:
    """A table's store keeps one RocksDB database per partition (else: memory, a dict)."""
    return hasattr(store, "_db_for_partition") and hasattr(store, "_dbs")


def read_key(store, partition: int, key: bytes) -> bytes | None:
    """A key of a table's store, from its partition's own database (rocksdb) or the dict."""
    if is_rocksdb(store):
        return store._db_for_partition(partition).get(key)  # noqa: SLF001
    return store.data.get(key)


def write_batch(store, partition: int, items: Iterable[tuple[bytes, bytes | None]]) -> bool:
    """Write the items (a None value deletes its key) in one atomic batch; False when the
    partition's database is closed (the partition was revoked: its next owner recovers
    the write from the changelog)."""
    if not is_rocksdb(store):
        for key, value in items:
            if value is None:
                store.data.pop(key, None)
            else:
                store.data[key] = value
        return True
    db = store._dbs.get(partition)  # noqa: SLF001
    if db is None:
        return False
    from rocksdict import WriteBatch

    batch = WriteBatch(raw_mode=True)
    for key, value in items:
        if value is None:
            batch.delete(key)
        else:
            batch.put(key, value)
    db.write(batch)
    return True


async def commit_offsets(consumer, offsets: dict) -> None:
    """Commit `offsets` (TP -> next offset to read) through Faust's own commit path, which
    flushes the producer, commits, tells the tables and updates Faust's idea of the
    committed offset."""
    await consumer._commit_offsets(offsets)  # noqa: SLF001


def worker_class_stopping_within(on_first_signal: Callable[[], None]):
    """faust.Worker calling `on_first_signal` on the first SIGTERM/SIGINT, before its own
    shutdown (mode's handlers of both signals call `_schedule_shutdown`)."""
    from faust.worker import Worker

    class BoundedStopWorker(Worker):
        def _schedule_shutdown(self, signal) -> None:  # noqa: ANN001 - mode's signature
            if not self._signal_stop_time:  # the first signal only
                on_first_signal()
            super()._schedule_shutdown(signal)

    return BoundedStopWorker


def is_partition_end(error) -> bool:  # noqa: ANN001 - a confluent_kafka.KafkaError
    """A consumer's "reached the end of the partition" event (enable.partition.eof)."""
    from confluent_kafka import KafkaError

    return error.code() == KafkaError._PARTITION_EOF  # noqa: SLF001


@dataclass(frozen=True)
class RestoreTarget:
    """A newly assigned active changelog partition of a RocksDB store, its database open."""

    store: object
    topic: str
    partition: int

    def persisted_offset(self) -> int | None:
        """The offset of the last changelog record the database holds (Faust's own key)."""
        db = self.store._dbs.get(self.partition)  # noqa: SLF001
        raw = None if db is None else db.get(self.store.offset_key)
        return None if raw is None else int(raw)

    def write(self, items: list[tuple[bytes, bytes | None]], last_offset: int) -> bool:
        """Changelog records (a None value deletes) and the offset they reach, in one atomic
        batch, as Faust's recovery would leave them; False once the partition is revoked."""
        return write_batch(self.store, self.partition, [*items, (self.store.offset_key, str(last_offset).encode())])


def bulk_restoring_table(app, name: str, restore: Callable[[list[RestoreTarget]], Awaitable[None]], **kwargs):
    """`app.Table(name, **kwargs)` whose RocksDB store, once it has opened the databases of
    newly assigned active partitions, awaits `restore(targets)` before Faust's recovery
    reads their persisted offsets (faust's TableManager.on_rebalance: tables, then
    recovery). A memory store is Faust's own."""
    from faust import stores
    from faust.stores.rocksdb import Store as RocksDBStore
    from faust.tables import Table

    class BulkRestoreStore(RocksDBStore):
        async def assign_partitions(self, table, tps, generation_id: int = 0) -> None:  # noqa: ANN001
            await super().assign_partitions(table, tps, generation_id)
            standbys = self.app.assignor.assigned_standbys()
            targets = [RestoreTarget(self, tp.topic, tp.partition) for tp in sorted(tps)
                       if tp.topic in table.changelog_topic.topics and tp not in standbys
                       and tp.partition in self._dbs]
            if targets:
                await restore(targets)

    class BulkRestoreTable(Table):
        def _new_store_by_url(self, url):  # noqa: ANN001, ANN202 - faust's signature
            if stores.by_url(url) is not RocksDBStore:
                return super()._new_store_by_url(url)
            return BulkRestoreStore(url, self.app, self, table_name=self.name, key_type=self.key_type,
                                    key_serializer=self.key_serializer, value_serializer=self.value_serializer,
                                    value_type=self.value_type, loop=self.loop, options=self.options)

    return app.tables.add(BulkRestoreTable(app, name=name, beacon=app.tables.beacon, **kwargs))
