"""What a sink does with an answer, and how long it waits before trying again (pure).

SPEC §3.7: network errors, 408, 429 and 5xx may succeed later and are retried, never
skipped, honouring `Retry-After`; a 401 refreshes the credentials first; any other 4xx
is refused for good (dead-lettered). Anything else unexpected (a redirect) is retried:
skipping it would lose a write, retrying shows on /healthz and in the metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

OK, RETRY, REAUTH, REFUSED = "ok", "retry", "reauth", "refused"
RETRY_AFTER_CAP = 3600.0  # a Retry-After beyond an hour is read as an hour


def classify(status: int | None) -> str:
    """`status` None: no answer (connection refused or reset, timeout)."""
    if status is None:
        return RETRY
    if 200 <= status < 300:
        return OK
    if status == 401:
        return REAUTH
    if status in (408, 429) or status >= 500:
        return RETRY
    if 400 <= status < 500:
        return REFUSED
    return RETRY


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delta-seconds or an HTTP-date), or
    None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), RETRY_AFTER_CAP)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(max((moment - now).total_seconds(), 0.0), RETRY_AFTER_CAP)


def backoff(attempt: int, cap: float, draw: float, base: float = 0.25) -> float:
    """Exponential backoff with jitter: attempt 1 waits about `base`, each next one twice
    as long, never more than `cap`; `draw` in [0, 1) spreads it over its upper half so
    that many sinks do not retry in step."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return ceiling * (0.5 + draw / 2)


def wait_before_retry(attempt: int, cap: float, draw: float, asked: float | None) -> float:
    """A server's `Retry-After` is honoured (it knows when it will cope); otherwise the backoff."""
    return asked if asked is not None else backoff(attempt, cap, draw)
