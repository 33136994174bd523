"""Compact encodings of the decision state (table values): the worker stores bytes,
the core sees its frozen values. Every value starts with a non-zero version byte (a
state-store restore must never mistake a value for one starting with a timestamp);
values written before versions 1 of attempts, masteries and integers are still read.

A pair's read time is the state that grows with every heartbeat: the core keeps it
packed (core/read_time.py: 32 bytes per accepted event) and it is stored as it is, so
encoding and decoding a pair copies its entries without unpacking them."""

from __future__ import annotations

import struct

import orjson

from xpbank.contract.codec import encode
from xpbank.contract.times import format_time, parse_time
from xpbank.core.attempts import AttemptState, CompletedAttempt, OpenAttempt
from xpbank.core.banking import BankDecision, MasteryRef, PairState
from xpbank.core.read_time import ENTRY_SIZE

_PAIR_HEADER = struct.Struct(">BI")
_BUNDLE_HEADER = struct.Struct(">BBq")  # version, whether a watermark follows, the watermark (0 if none)
_BUNDLE_ITEM = struct.Struct(">II")  # a resource's length, its pair's length
BUNDLE_HEADER_SIZE = _BUNDLE_HEADER.size
_VERSIONED_INT = struct.Struct(">Bq")
_LEGACY_INT = struct.Struct(">q")
JSON_V1 = b"\x01"  # version 1 of attempts and mastery refs: the byte, then JSON
INT_V1 = 1


def encode_pair(pair: PairState) -> bytes:
    """Version 1: the entries, then the decision (a JSON list), if any. Version 2 adds the
    exercises whose evidence shows the pair: the trailer is [decision or null, exercises]."""
    entries = pair.entries
    decision = None if pair.decision is None else [format_time(pair.decision.decided_at), *pair.decision[1:]]
    header = _PAIR_HEADER.pack(2 if pair.explains else 1, len(entries) // ENTRY_SIZE)
    if pair.explains:
        return header + entries + orjson.dumps([decision, pair.explains])
    if decision is not None:
        return header + entries + orjson.dumps(decision)
    return header + entries


def decode_pair(raw: bytes) -> PairState:
    version, count = _PAIR_HEADER.unpack_from(raw, 0)
    if version not in (1, 2):
        raise ValueError(f"pair state version {version} is not supported")
    end = _PAIR_HEADER.size + count * ENTRY_SIZE
    entries = raw[_PAIR_HEADER.size:end]
    if end == len(raw):
        return PairState(entries)
    trailer = orjson.loads(raw[end:])
    fields, explains = (trailer[0], tuple(trailer[1])) if version == 2 else (trailer, ())
    decision = None if fields is None else BankDecision(parse_time(fields[0]), *fields[1:])
    return PairState(entries, decision, explains)


def bundle_item(resource: str, pair: bytes) -> bytes:
    """One pair of a learner's bundle (processing/learner_state.py), as the bundle holds it."""
    raw = resource.encode("utf-8")
    return _BUNDLE_ITEM.pack(len(raw), len(pair)) + raw + pair


def item_pair(item: bytes) -> bytes:
    """The encoded pair in a `bundle_item`."""
    size, _ = _BUNDLE_ITEM.unpack_from(item, 0)
    return item[_BUNDLE_ITEM.size + size:]


def encode_bundle(watermark: int | None, items: dict[str, bytes]) -> bytes:
    """A learner's bundle, version 1: the watermark, then its pairs' `bundle_item`s in the
    order of `items`, which the caller keeps sorted by resource (so that the same state
    always gives the same bytes; `decode_bundle` reads them back in that order)."""
    return b"".join([_BUNDLE_HEADER.pack(1, watermark is not None, watermark or 0), *items.values()])


def decode_bundle(raw: bytes) -> tuple[int | None, dict[str, bytes]]:
    """(the watermark, each pair's `bundle_item` by resource): a pair is decoded only when
    read (`item_pair`)."""
    version, has_watermark, watermark = _BUNDLE_HEADER.unpack_from(raw, 0)
    if version != 1:
        raise ValueError(f"bundle version {version} is not supported")
    items, at, header, unpack = {}, _BUNDLE_HEADER.size, _BUNDLE_ITEM.size, _BUNDLE_ITEM.unpack_from
    while at < len(raw):
        size, length = unpack(raw, at)
        end = at + header + size + length
        items[raw[at + header:at + header + size].decode("utf-8")] = raw[at:end]
        at = end
    return (watermark if has_watermark else None), items


def encode_attempts(state: AttemptState) -> bytes:
    """Version 1: the byte, then the JSON object the pydantic state used to dump (the ids
    seen now sorted, so the same state always gives the same bytes)."""
    doc = state._asdict()
    doc["open"] = None if state.open is None else state.open._asdict()
    doc["last_completed"] = None if state.last_completed is None else state.last_completed._asdict()
    doc["seen"] = sorted(state.seen)
    return JSON_V1 + orjson.dumps(doc)


def decode_attempts(raw: bytes) -> AttemptState:
    doc = orjson.loads(_json_of(raw, "attempt state"))
    opened, done = doc["open"], doc["last_completed"]
    return AttemptState(
        completed=doc["completed"],
        mastered_before=doc["mastered_before"],
        open=None if opened is None else OpenAttempt(
            opened["number"], opened["total_questions"], tuple((q, ok) for q, ok in opened["answers"]),
            tuple(opened["reported"])),
        last_completed=None if done is None else CompletedAttempt(**done),
        seen=frozenset(doc["seen"]),
    )


def encode_mastery_ref(ref: MasteryRef) -> bytes:
    return JSON_V1 + encode(ref)


def decode_mastery_ref(raw: bytes) -> MasteryRef:
    return MasteryRef.model_validate(orjson.loads(_json_of(raw, "mastery ref")))


def _json_of(raw: bytes, what: str) -> bytes:
    if raw[:1] == JSON_V1:
        return raw[1:]
    if raw[:1] == b"{":  # before version 1: the JSON object alone
        return raw
    raise ValueError(f"{what} version {raw[0]} is not supported")


def encode_int(value: int) -> bytes:
    """Watermarks (µs) and positions (offsets): version 1, then a big-endian int64."""
    return _VERSIONED_INT.pack(INT_V1, value)


def decode_int(raw: bytes) -> int:
    if len(raw) == _LEGACY_INT.size:  # before version 1: the int64 alone
        return _LEGACY_INT.unpack(raw)[0]
    version, value = _VERSIONED_INT.unpack(raw)
    if version != INT_V1:
        raise ValueError(f"integer value version {version} is not supported")
    return value
