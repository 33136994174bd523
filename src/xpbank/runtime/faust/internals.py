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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

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


def write_batch(store, partition: int, items: Iterable[tuple[bytes, bytes]]) -> bool:
    """Write the items in one batch; False when the partition's database is closed (the
    partition was revoked: its next owner recovers the write from the changelog)."""
    if not is_rocksdb(store):
        store.data.update(items)
        return True
    db = store._dbs.get(partition)  # noqa: SLF001
    if db is None:
        return False
    from rocksdict import WriteBatch

    batch = WriteBatch(raw_mode=True)
    for key, value in items:
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
