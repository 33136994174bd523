"""Record lines (SPEC §5): one Kafka record per JSON line, used by `produce`,
`simulate` (in and out) and `dump`."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from xpbank.contract.times import format_time, parse_time
from xpbank.contract.records import InputRecord, OutputRecord
from xpbank.contract.topics import BY_NAME, base_name


class RecordLineError(ValueError):
    """A line of a record file is not a record line (a mistake in the file, not input)."""


def parse_line(line: str | bytes, number: int, prefix: str = "", topic: str | None = None) -> InputRecord:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise RecordLineError(f"line {number}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise RecordLineError(f"line {number}: a record line is a JSON object")
    full_name = topic or doc.get("topic")
    if not isinstance(full_name, str):
        raise RecordLineError(f"line {number}: missing \"topic\"")
    name = base_name(full_name, prefix)
    if name not in BY_NAME:
        raise RecordLineError(f"line {number}: unknown topic {full_name!r}")
    if "raw" in doc:
        value: bytes | None = str(doc["raw"]).encode("utf-8")
    elif "value" in doc:
        value = None if doc["value"] is None else orjson.dumps(doc["value"])
    else:
        raise RecordLineError(f"line {number}: needs \"value\" or \"raw\"")
    key = doc.get("key")
    return InputRecord(
        topic=name,
        key=None if key is None else str(key).encode("utf-8"),
        value=value,
        timestamp=_timestamp(doc, number),
        partition=None,
        offset=number,
        topic_full_name=prefix + name,
    )


def _timestamp(doc: dict[str, Any], number: int) -> datetime:
    """The line's timestamp, else the value's eventTime (or an envelope's sendTime), else now."""
    value = doc.get("value")
    for candidate in (
        doc.get("timestamp"),
        value.get("eventTime") if isinstance(value, dict) else None,
        value.get("sendTime") if isinstance(value, dict) else None,
    ):
        if candidate is not None:
            try:
                return parse_time(candidate)
            except ValueError:
                if candidate is doc.get("timestamp"):
                    raise RecordLineError(f"line {number}: timestamp {candidate!r} is not ISO-8601 with a zone") from None
    return datetime.now(UTC)


def read_lines(lines: Iterable[str | bytes], prefix: str = "", topic: str | None = None) -> Iterator[InputRecord]:
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield parse_line(line, number, prefix, topic)


def output_line(record: OutputRecord, prefix: str = "", **extra: Any) -> bytes:
    doc: dict[str, Any] = {
        "topic": prefix + record.topic,
        "key": record.key,
        "value": record.value.model_dump(mode="json"),
        "timestamp": format_time(record.timestamp) if record.timestamp else None,
    }
    doc.update(extra)
    return orjson.dumps(doc)


def open_lines(path: str) -> Iterator[bytes]:
    """The lines of a file, or of stdin for `-`."""
    if path == "-":
        yield from sys.stdin.buffer
        return
    with open(path, "rb") as handle:
        yield from handle
