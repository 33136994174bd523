"""The one codec: record bytes -> models (or a SPEC §3.6 reason), and models -> bytes.

Checks run in the contract's order: size, JSON, schema (with SPEC §2.5's limits on ids
and envelopes), future_event_time. The checks that need state (too_late, duplicates,
rules) belong to the core. A Caliper envelope yields one result per event, so one bad
event never sinks its neighbours; an over-long sensor or too many events sink the record."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from xpbank.contract.events import CaliperEnvelope, CourseDeleted, CourseUpserted, ExerciseMastered, Submission, TimeSpentEvent
from xpbank.contract.identifiers import caliper_id_problem, id_problem, too_many_events


@dataclass(frozen=True)
class Accepted:
    event: BaseModel


@dataclass(frozen=True)
class Ignored:
    """A Caliper event of another type: counted, not dead-lettered."""

    event_type: str


@dataclass(frozen=True)
class Invalid:
    reason: str
    detail: str
    event_id: str | None = None


Decoded = Accepted | Ignored | Invalid


class Limits(Protocol):
    """The configured limits the checks need (core.rules.Rules is one)."""

    max_payload_bytes: int
    max_clock_skew_seconds: int
    max_id_length: int
    max_events_per_envelope: int

SUBMISSION = TypeAdapter(Submission)
SINGLE_MODEL: dict[str, type[BaseModel] | TypeAdapter] = {
    "submissions": SUBMISSION,
    "mastery": ExerciseMastered,
    "curriculum": CourseUpserted,
}


def decode(kind: str, value: bytes | None, key: bytes | None, timestamp: datetime | None, rules: Limits) -> list[Decoded]:
    """Decode one record of an input topic of the given kind (see topics.INPUT_KINDS)."""
    if value is None:
        if kind == "curriculum" and key:
            course = key.decode("utf-8", "replace")
            if (problem := id_problem(course, rules.max_id_length)) is not None:
                return [Invalid("schema_violation", f"courseSourcedId (the key): {problem}")]
            return [Accepted(CourseDeleted(courseSourcedId=course))]
        return [Invalid("schema_violation", "a null value is only meaningful on the curriculum topic (with a key)")]
    if len(value) > rules.max_payload_bytes:
        return [Invalid("payload_too_large", f"{len(value)} bytes > {rules.max_payload_bytes}")]
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return [Invalid("malformed_json", str(exc))]
    if kind == "caliper":
        return _decode_caliper(doc, timestamp, rules)
    return [_validate(SINGLE_MODEL[kind], doc, timestamp, rules)]


def _decode_caliper(doc: Any, timestamp: datetime | None, rules: Limits) -> list[Decoded]:
    if isinstance(doc, dict) and "data" in doc and "type" not in doc:
        try:
            envelope = CaliperEnvelope.model_validate(doc, context={"max_id_length": rules.max_id_length})
        except ValidationError as exc:
            return [Invalid("schema_violation", "envelope: " + _summary(exc))]
        if (problem := too_many_events(len(envelope.data), rules.max_events_per_envelope)) is not None:
            return [Invalid("schema_violation", "envelope: " + problem)]
        return [_decode_caliper_event(item, timestamp, rules) for item in envelope.data]
    return [_decode_caliper_event(doc, timestamp, rules)]


def _decode_caliper_event(doc: Any, timestamp: datetime | None, rules: Limits) -> Decoded:
    if isinstance(doc, dict) and (problem := caliper_id_problem(doc, rules.max_id_length)) is not None:
        event_id = doc.get("id") if isinstance(doc.get("id"), str) and not problem.startswith("id:") else None
        return Invalid("schema_violation", problem, event_id)  # any Caliper type: its ids stay in the log
    kind = doc.get("type") if isinstance(doc, dict) else None
    if isinstance(kind, str) and kind != "TimeSpentEvent":
        return Ignored(kind)
    return _validate(TimeSpentEvent, doc, timestamp, rules)


def _validate(model: Any, doc: Any, timestamp: datetime | None, rules: Limits) -> Decoded:
    event_id = doc.get("id") if isinstance(doc, dict) and isinstance(doc.get("id"), str) else None
    context = {"max_id_length": rules.max_id_length}
    try:
        if isinstance(model, TypeAdapter):
            event = model.validate_python(doc, context=context)
        else:
            event = model.model_validate(doc, context=context)
    except ValidationError as exc:
        if event_id is not None and id_problem(event_id, rules.max_id_length) is not None:
            event_id = None  # the dead letter names no id that breaks the limits (the payload holds it)
        return Invalid("schema_violation", _summary(exc), event_id)
    event_time = getattr(event, "eventTime", None)
    if timestamp is not None and event_time is not None:
        if event_time - timestamp > timedelta(seconds=rules.max_clock_skew_seconds):
            return Invalid(
                "future_event_time",
                f"eventTime {event_time.isoformat()} is more than {rules.max_clock_skew_seconds}s "
                f"after the record timestamp {timestamp.isoformat()}",
                event_id,
            )
    return Accepted(event)


def _summary(exc: ValidationError, most: int = 3) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:most]]
    more = exc.error_count() - most
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


# ---- output values -------------------------------------------------------------


def encode(model: BaseModel) -> bytes:
    return orjson.dumps(model.model_dump(mode="json"))


def payload_text(value: bytes | None) -> tuple[str | None, str]:
    """A dead letter's payload: the original bytes as UTF-8 text, else base64."""
    if value is None:
        return None, "utf-8"
    try:
        return value.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii"), "base64"
