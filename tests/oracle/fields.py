"""Field checks of SPEC §2 (JSON types) and §2.5 (identifiers), and the settings the
rules read. A failed check raises `Violation`: the record or event is a `schema_violation`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from tests.oracle.records import parse_time

CONTROL = re.compile("[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Limits:
    """The settings the rules read (SPEC §2.1, §2.5, §3.5, §3.6 defaults)."""

    lateness_seconds: int = 3600
    max_clock_skew_seconds: int = 300
    max_unanchored_seconds: int = 60
    max_payload_bytes: int = 262144
    generation: int = 1
    max_id_length: int = 512
    max_events_per_envelope: int = 1000
    identifier_rules: bool = True  # SPEC §2.5 (amended 2026-12-03): off only for a product without them


class Violation(Exception):
    """The record (or event) breaks the schema: a `schema_violation`."""


# ---- field checks (§2: types; §2.5: identifiers) ---------------------------------------


def need(doc: dict, name: str):
    if name not in doc:
        raise Violation(f"{name} is required")
    return doc[name]


def a_dict(value) -> dict:
    if not isinstance(value, dict):
        raise Violation("an object is required")
    return value


def a_list(value) -> list:
    if not isinstance(value, list):
        raise Violation("an array is required")
    return value


def a_string(value, nonempty: bool = False) -> str:
    if not isinstance(value, str) or (nonempty and value == ""):
        raise Violation("a (non-empty) string is required")
    return value


def an_optional_string(value) -> str | None:
    return None if value is None else a_string(value)


def an_int(value, minimum: int) -> int:
    """A JSON integer (not a boolean, not a number with a fraction) >= minimum."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise Violation(f"an integer >= {minimum} is required")
    return value


def a_number(value, minimum: float | None = None) -> float:
    """A finite JSON number (not a boolean)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or (minimum is not None and value < minimum):
        raise Violation("a number is required")
    return value


def a_time(value) -> datetime:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise Violation(f"a time with a zone is required: {exc}") from None


def id_problem(value: str, limits: Limits) -> bool:
    """§2.5: at most max_id_length characters, no control character."""
    return limits.identifier_rules and (len(value) > limits.max_id_length or CONTROL.search(value) is not None)


def an_id(value, limits: Limits, nonempty: bool = True) -> str:
    value = a_string(value, nonempty)
    if id_problem(value, limits):
        raise Violation("an identifier breaks SPEC §2.5")
    return value


def last_segment(ref: str) -> str:
    """§2.1: the sourcedId is the last path segment of a URL, or the bare id (trailing
    slashes are not a segment)."""
    return ref.rstrip("/").rsplit("/", 1)[-1]


def readable_id(doc, limits: Limits) -> str | None:
    """A dead letter's `eventId`: the event's `id` when it is a string (and, §2.5 as
    docs/decisions.md reads it, not itself over the limits)."""
    if isinstance(doc, dict) and isinstance(doc.get("id"), str) and not id_problem(doc["id"], limits):
        return doc["id"]
    return None
