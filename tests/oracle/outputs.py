"""The output values of SPEC §3.2, §3.3 and §3.5 as JSON dicts: ids, fact and award
shapes, and times as UTC text with `Z`."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime


def utc_text(moment: datetime | None) -> str | None:
    """§1: output times are UTC with `Z`; milliseconds always, microseconds when present
    (the form the product writes, so values compare as JSON)."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return (text if moment.microsecond % 1000 else text[:-3]) + "Z"


def output_id(identity: str) -> str:
    """§3.5: `urn:uuid:` + uuid5(NAMESPACE_URL, identity)."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, identity)}"


def part(sourced_id: str, escape: bool) -> str:
    """§2.5: a sourcedId joined into an id has `%` and `:` percent-encoded."""
    return sourced_id.replace("%", "%25").replace(":", "%3A") if escape else sourced_id


def mastery_id(user: str, exercise: str, attempt: int, escape: bool) -> str:
    """§3.3."""
    return output_id(f"xpbank:mastery:{part(user, escape)}:{part(exercise, escape)}:{attempt}")


def exercise_fact_id(user: str, exercise: str, attempt: int, escape: bool) -> str:
    return f"exercise:{part(user, escape)}:{part(exercise, escape)}:{attempt}"


def bank_id(user: str, resource: str, escape: bool) -> str:
    """§3.5: both a banked fact's `factId` and its award's `awardId`."""
    return f"bank:{part(user, escape)}:{part(resource, escape)}"


def bank_output_id(user: str, resource: str, generation: int, revision: int, escape: bool) -> str:
    return output_id(f"xpbank:bank:{part(user, escape)}:{part(resource, escape)}:{generation}:{revision}")


def fact(fact_id: str, kind: str, generation: int, revision: int, user: str, email: str | None, course: str,
         subject: str | None, resource: str, exercise: str, attempt: int, xp: int, when: datetime, source: str) -> dict:
    """§3.5 XpFact; `date` is the UTC date of `eventTime`."""
    return {
        "factId": fact_id, "kind": kind, "generation": generation, "revision": revision, "userSourcedId": user,
        "email": email, "date": when.astimezone(UTC).date().isoformat(), "courseSourcedId": course,
        "subject": subject, "resourceSourcedId": resource, "exerciseSourcedId": exercise, "attempt": attempt,
        "xp": xp, "eventTime": utc_text(when), "sources": [source],
    }


def payload(value: bytes | None) -> tuple[str | None, str]:
    """§3.6: the original bytes as UTF-8 text, else base64."""
    if value is None:
        return None, "utf-8"
    try:
        return value.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(value).decode("ascii"), "base64"
