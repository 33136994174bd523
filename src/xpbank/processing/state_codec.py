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
_PAIR_VERSION = 1


def encode_pair(pair: PairState) -> bytes:
    parts = [_PAIR_HEADER.pack(_PAIR_VERSION, len(pair.entries))]
    for entry in pair.entries:
        parts.append(_ENTRY.pack(entry.time_us, entry.credited_ms, uuid.UUID(entry.event_id[9:]).bytes))
    if pair.decision is not None:
        parts.append(orjson.dumps(list(pair.decision.model_dump(mode="json").values())))
    return b"".join(parts)


def decode_pair(raw: bytes) -> PairState:
    version, count = _PAIR_HEADER.unpack_from(raw, 0)
    if version != _PAIR_VERSION:
        raise ValueError(f"pair state version {version} is not supported")
    offset = _PAIR_HEADER.size
    entries = []
    for _ in range(count):
        time_us, credited_ms, uid = _ENTRY.unpack_from(raw, offset)
        entries.append(TimeEntry(time_us, credited_ms, f"urn:uuid:{uuid.UUID(bytes=uid)}"))
        offset += _ENTRY.size
    decision = None
    if offset < len(raw):
        decision = BankDecision.model_validate(dict(zip(BankDecision.model_fields, orjson.loads(raw[offset:]))))
    return PairState(entries=tuple(entries), decision=decision)


def encode_attempts(state: AttemptState) -> bytes:
    return orjson.dumps(state.model_dump(mode="json"))


def decode_attempts(raw: bytes) -> AttemptState:
    return AttemptState.model_validate(orjson.loads(raw))


def encode_mastery_ref(ref: MasteryRef) -> bytes:
    return encode(ref)


def decode_mastery_ref(raw: bytes) -> MasteryRef:
    return MasteryRef.model_validate(orjson.loads(raw))

