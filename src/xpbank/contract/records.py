"""The records the processing step takes and gives: a record read from a topic, and an
output to publish (its value a contract model). Engine-neutral: the engines, the
simulator, the CLI and the Kafka clients build and read them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from pydantic import BaseModel


class InputRecord(NamedTuple):  # immutable; built per record, where a frozen dataclass's __init__ costs 2x
    topic: str  # registry name (without prefix)
    key: bytes | None
    value: bytes | None
    timestamp: datetime | None
    partition: int | None = None
    offset: int | None = None
    topic_full_name: str | None = None  # as it appears on the broker, for dead letters


@dataclass(frozen=True)
class OutputRecord:
    topic: str
    key: str | None
    value: BaseModel
    timestamp: datetime | None
