"""The state layouts earlier versions wrote, read through so that an upgrade needs no
replay (the declared upcasters). A key missing in today's layout
(processing/learner_state.py) is looked up where the earlier layout kept it; the value
found is today's value (the state codec reads every version it ever wrote). The first
write of a key puts it in today's layout, which from then on shadows the old one.

- `faust-v1`: the Faust engine's five tables (watermarks, pairs, attempts, masteries,
  positions), keyed by the learner's `store_part` alone (watermarks) or by `pair_key`;
  a partition's outbox was the key `outbox_key(partition)` of the positions table.
- `quix-v1`: the same keys as today, but the outbox key did not name its partition.

A layout is read through only where its state exists: the Faust worker declares the
five old tables only when their changelog topics are on the broker."""

from __future__ import annotations

from collections.abc import Callable

from xpbank.contract.identifiers import store_part
from xpbank.processing.learner_state import (ATTEMPTS, BUNDLE, MASTERY, OUTBOX_PREFIX, PAIR, POSITION, WATERMARK,
                                             StatePort)
from xpbank.processing.state import pair_key

FAUST_V1_TABLES = ("watermarks", "pairs", "attempts", "masteries", "positions")
_FAUST_V1_TABLE_OF = {PAIR: "pairs", ATTEMPTS: "attempts", MASTERY: "masteries", POSITION: "positions"}
QUIX_V1_OUTBOX_KEY = b"\x00outbox"

Legacy = Callable[[bytes, bytes], "bytes | None"]  # (key, prefix) -> the value in the old layout


def faust_v1_key(key: bytes, prefix: bytes) -> tuple[str, bytes] | None:
    """The table and key where the faust-v1 layout kept today's (`key`, `prefix`), None
    for a key it had no counterpart of (a learner's bundle)."""
    if prefix == OUTBOX_PREFIX:
        return "positions", key
    if key == BUNDLE:
        return None
    user = prefix[4:].decode("utf-8")
    if key == WATERMARK:
        return "watermarks", store_part(user).encode("utf-8")
    return _FAUST_V1_TABLE_OF[key[:2]], pair_key(user, key[2:].decode("utf-8")).encode("utf-8")


def faust_v1(get: Callable[[str, bytes], "bytes | None"]) -> Legacy:
    """The faust-v1 layout, read with `get(table, key)`."""
    def legacy(key: bytes, prefix: bytes) -> bytes | None:
        where = faust_v1_key(key, prefix)
        return None if where is None else get(*where)
    return legacy


def quix_v1(port: StatePort) -> Legacy:
    """The quix-v1 layout in the same partition store: only the outbox key moved."""
    def legacy(key: bytes, prefix: bytes) -> bytes | None:
        if prefix == OUTBOX_PREFIX:
            return port.get_bytes(QUIX_V1_OUTBOX_KEY, prefix=OUTBOX_PREFIX)
        return None
    return legacy


class ReadThrough:
    """A port whose missing keys are read from an earlier layout."""

    __slots__ = ("port", "legacy")

    def __init__(self, port: StatePort, legacy: Legacy) -> None:
        self.port, self.legacy = port, legacy

    def get_bytes(self, key: bytes, prefix: bytes) -> bytes | None:
        value = self.port.get_bytes(key, prefix=prefix)
        return self.legacy(key, prefix) if value is None else value

    def set_bytes(self, key: bytes, value: bytes, prefix: bytes) -> None:
        self.port.set_bytes(key, value, prefix=prefix)
