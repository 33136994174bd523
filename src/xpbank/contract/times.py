"""Event times: ISO-8601 with a zone in, integer microseconds inside, UTC `Z` out.

Integers inside keep sums and comparisons exact and independent of arrival order."""

from __future__ import annotations

import re
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


# Times in the shape apps send, "YYYY-MM-DDTHH:MM:SS.mmmZ", are looked up in two parts
# once seen: the second (it recurs across heartbeats and learners) and the fraction (one
# of a thousand), at about half the cost of parsing. A part is learnt only from a text of
# exactly that shape that parsed, so a text whose two parts are both known has that shape
# and its value is their sum (UTC: no offset to apply). Seconds are forgotten past
# _SECONDS_KEPT; the result never depends on what is known.
_SECONDS: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM:SS" -> µs
_FRACTIONS: dict[str, int] = {}  # ".mmmZ" -> µs
_SECONDS_KEPT = 1 << 12
_MILLIS_Z = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z").fullmatch
_fromisoformat = datetime.fromisoformat


def text_micros(text: str) -> int:
    """to_micros(parse_time(text)) for a string, and the same ValueError where parse_time
    refuses (the hot path's decoders: contract/heartbeats.py, processing/hot_path.py)."""
    if len(text) == 24:
        second = _SECONDS.get(text[:19])
        if second is not None and (fraction := _FRACTIONS.get(text[19:])) is not None:
            return second + fraction
        micros = _parsed_micros(text)
        if _MILLIS_Z(text):
            if len(_SECONDS) >= _SECONDS_KEPT:
                _SECONDS.clear()
            fraction = _FRACTIONS[text[19:]] = int(text[20:23]) * 1000
            _SECONDS[text[:19]] = micros - fraction
        return micros
    return _parsed_micros(text)


def _parsed_micros(text: str) -> int:
    try:
        moment = _fromisoformat(text)
        if moment.tzinfo is not UTC:  # "Z" and "+00:00" give UTC itself
            if moment.utcoffset() is None:
                raise ValueError("must carry a zone (e.g. Z or +00:00)")
            moment = moment.astimezone(UTC)  # may overflow, as in parse_time
    except OverflowError:
        raise ValueError("is outside the representable range once converted to UTC") from None
    return to_micros(moment)

Time = Annotated[
    datetime,
    BeforeValidator(parse_time),
    PlainSerializer(format_time, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
