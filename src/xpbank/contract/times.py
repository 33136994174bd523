"""Event times: ISO-8601 with a zone in, integer microseconds inside, UTC `Z` out.

Integers inside keep sums and comparisons exact and independent of arrival order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_time(value: object) -> datetime:
    """Parse an ISO-8601 time that names its zone; anything else is a ValueError."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = datetime.fromisoformat(value)
    else:
        raise ValueError("must be an ISO-8601 string with a zone")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("must carry a zone (e.g. Z or +00:00)")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the representable range once converted to UTC") from None


def to_micros(moment: datetime) -> int:
    """Exact: a timedelta's parts are normalised (0 <= seconds < 86400, 0 <= microseconds
    < 10**6), and three attributes cost less than dividing one timedelta by another."""
    since = moment - EPOCH
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


def from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def format_time(moment: datetime) -> str:
    """UTC with `Z`, milliseconds always, microseconds only when present."""
    moment = moment.astimezone(UTC)
    digits = 3 if moment.microsecond % 1000 == 0 else 6
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[: 20 + digits] + "Z"


Time = Annotated[
    datetime,
    BeforeValidator(parse_time),
    PlainSerializer(format_time, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
