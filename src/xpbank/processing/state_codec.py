"""Compact encodings of the decision state (table values): the worker stores bytes,
the core sees its frozen values. A pair's read time is the state that grows with every
heartbeat, so it is packed: 32 bytes per accepted event (time µs, credited ms, event
uuid), then the decision."""

from __future__ import annotations

import struct
import uuid

import orjson

from xpbank.contract.codec import encode
from xpbank.core.attempts import AttemptState
from xpbank.core.banking import BankDecision, MasteryRef, PairState
from xpbank.core.read_time import TimeEntry

_PAIR_HEADER = struct.Struct(">BI")
_ENTRY = struct.Struct(">qq16s")


def encode_pair(pair: PairState) -> bytes:
    """Version 1: the entries, then the decision (a JSON list), if any. Version 2 adds the
    exercises whose evidence shows the pair: the trailer is [decision or null, exercises]."""
    version = 2 if pair.explains else 1
    parts = [_PAIR_HEADER.pack(version, len(pair.entries))]
    for entry in pair.entries:
        parts.append(_ENTRY.pack(entry.time_us, entry.credited_ms, uuid.UUID(entry.event_id[9:]).bytes))
    decision = None if pair.decision is None else list(pair.decision.model_dump(mode="json").values())
    if version == 2:
        parts.append(orjson.dumps([decision, pair.explains]))
    elif decision is not None:
        parts.append(orjson.dumps(decision))
    return b"".join(parts)


def decode_pair(raw: bytes) -> PairState:
    version, count = _PAIR_HEADER.unpack_from(raw, 0)
    if version not in (1, 2):
        raise ValueError(f"pair state version {version} is not supported")
    offset = _PAIR_HEADER.size
    entries = []
    for _ in range(count):
        time_us, credited_ms, uid = _ENTRY.unpack_from(raw, offset)
        entries.append(TimeEntry(time_us, credited_ms, f"urn:uuid:{uuid.UUID(bytes=uid)}"))
        offset += _ENTRY.size
    fields, explains = None, ()
    if offset < len(raw):
        trailer = orjson.loads(raw[offset:])
        fields, explains = (trailer[0], tuple(trailer[1])) if version == 2 else (trailer, ())
    decision = None if fields is None else BankDecision.model_validate(dict(zip(BankDecision.model_fields, fields)))
    return PairState(entries=tuple(entries), decision=decision, explains=explains)


def encode_attempts(state: AttemptState) -> bytes:
    return orjson.dumps(state.model_dump(mode="json"))


def decode_attempts(raw: bytes) -> AttemptState:
    return AttemptState.model_validate(orjson.loads(raw))


def encode_mastery_ref(ref: MasteryRef) -> bytes:
    return encode(ref)


def decode_mastery_ref(raw: bytes) -> MasteryRef:
    return MasteryRef.model_validate(orjson.loads(raw))

