"""Input records as the oracle reads them: a record line (SPEC §5) or a stored golden
record becomes a `Record` of plain values. Nothing here comes from xpbank."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

CALIPER = "learning.caliper.v1"
SUBMISSIONS = "learning.submissions.v1"
MASTERY = "learning.mastery.v1"
CURRICULUM = "learning.curriculum.v1"
INPUT_TOPICS = (CALIPER, SUBMISSIONS, MASTERY, CURRICULUM)


@dataclass(frozen=True)
class Record:
    topic: str  # the topic's name without the prefix
    key: str | None
    value: bytes | None  # None: a tombstone
    timestamp: datetime | None  # the Kafka record timestamp (UTC)
    offset: int | None  # in `simulate`, the 1-based line number (SPEC §3.6)
    topic_name: str  # as a dead letter names it (with the prefix)


def parse_time(text: object) -> datetime:
    """SPEC §1: ISO-8601 with a zone. Raises ValueError for anything else."""
    if not isinstance(text, str):
        raise ValueError("must be an ISO-8601 string with a zone")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("must carry a zone")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range in UTC") from None


def line_timestamp(line: dict, now: datetime) -> datetime:
    """SPEC §5: the line's `timestamp`, else the value's `eventTime`, else now (and, as
    docs/decisions.md reads it, an envelope's `sendTime` before now)."""
    if line.get("timestamp") is not None:
        return parse_time(line["timestamp"])
    value = line.get("value")
    for field in ("eventTime", "sendTime"):
        if isinstance(value, dict) and value.get(field) is not None:
            try:
                return parse_time(value[field])
            except ValueError:
                continue
    return now


def from_lines(lines: list[dict], prefix: str = "", now: datetime | None = None) -> list[Record]:
    """Record lines (dicts) in arrival order. A line's value is the JSON text of its
    `value` (as `xpbank produce` sends it), or its `raw` text."""
    now = now or datetime.now(UTC)
    records = []
    for number, line in enumerate(lines, start=1):
        topic = line["topic"].removeprefix(prefix)
        if "raw" in line:
            value = str(line["raw"]).encode("utf-8")
        else:
            value = None if line["value"] is None else orjson.dumps(line["value"])
        key = None if line.get("key") is None else str(line["key"])
        records.append(Record(topic, key, value, line_timestamp(line, now), number, prefix + topic))
    return records


def _bytes(doc: dict | None) -> bytes | None:
    if doc is None:
        return None
    return doc["text"].encode("utf-8") if "text" in doc else base64.b64decode(doc["base64"])


def from_stored(doc: dict) -> Record:
    """A record as tests/golden/corpora store it (key and value as text or base64)."""
    key = _bytes(doc["key"])
    return Record(
        topic=doc["topic"],
        key=None if key is None else key.decode("utf-8", "replace"),
        value=_bytes(doc["value"]),
        timestamp=None if doc["timestamp"] is None else parse_time(doc["timestamp"]),
        offset=doc["offset"],
        topic_name=doc["topic_full_name"] or doc["topic"],
    )
