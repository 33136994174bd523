"""The HTTP edge of a sink: one aiohttp session, its credentials, a pace (requests per
second) and a bound on requests in flight, and `deliver`, which answers a request only
once it succeeded or was refused for good: everything that may succeed later is
retried (`retry.py`), counted, and shown on /healthz meanwhile."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from xpbank.sinks.auth import TokenSource, TokenUnavailable
from xpbank.sinks.metrics import Health, SinkMetrics
from xpbank.sinks.retry import OK, REAUTH, REFUSED, classify, retry_after, wait_before_retry
from xpbank.sinks.settings import Delivery

log = logging.getLogger("xpbank.sinks")


@dataclass(frozen=True)
class Reply:
    status: int
    body: str


class Pace:
    """At most `rate` requests per second, evenly spaced (0: no limit)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock, self.next_slot = clock, 0.0

    def reserve(self) -> float:
        """Take the next slot; returns how long to wait for it."""
        if not self.interval:
            return 0.0
        now = self.clock()
        slot = max(now, self.next_slot)
        self.next_slot = slot + self.interval
        return slot - now

    async def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


class Client:
    def __init__(self, delivery: Delivery, metrics: SinkMetrics, health: Health) -> None:
        self.delivery, self.metrics, self.health = delivery, metrics, health
        self.pace = Pace(delivery.rate)
        self.in_flight = asyncio.Semaphore(delivery.concurrency)
        self._session: aiohttp.ClientSession | None = None
        self.tokens = TokenSource(delivery.credentials, self.session)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.delivery.timeout_seconds),
                connector=aiohttp.TCPConnector(limit=self.delivery.concurrency * 2))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def deliver(self, method: str, url: str, body: bytes | None = None) -> Reply:
        """The server's answer once it is a success or a refusal for good."""
        attempt = 0
        while True:
            status, text, asked, problem, header = await self._attempt(method, url, body)
            kind = classify(status)
            if kind in (OK, REFUSED):
                self.health.server_answered()
                return Reply(status, text)
            attempt += 1
            self.metrics.retries += 1
            self.health.server_failed(problem)
            if kind == REAUTH:
                self.tokens.refused(header)
                if attempt == 1:  # a fresh token first; again and again: the credentials are refused
                    continue
            wait = wait_before_retry(attempt, self.delivery.backoff_max_seconds, random.random(), asked)
            if attempt in (1, 10) or attempt % 50 == 0:
                log.warning("%s %s: %s; retrying in %.1f s (attempt %d)", method, _path(url), problem, wait, attempt)
            await asyncio.sleep(wait)

    async def _attempt(self, method: str, url: str, body: bytes | None) -> tuple:
        """(status or None, body, seconds Retry-After asks, problem, the header used)."""
        async with self.in_flight:
            await self.pace.wait()
            try:
                header = await self.tokens.header()
            except TokenUnavailable as exc:
                self.metrics.requests["token_error"] += 1
                return None, "", None, str(exc), ""
            headers = {"Authorization": header, "Accept": "application/json"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            try:
                async with self.session().request(method, url, data=body, headers=headers,
                                                  allow_redirects=False) as response:
                    text = await response.text(errors="replace")
                    status, asked = response.status, retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                self.metrics.requests["error"] += 1
                return None, "", None, f"no answer ({type(exc).__name__})", header
        self.metrics.requests[str(status)] += 1
        return status, text, asked, f"answered {status}", header


def _path(url: str) -> str:
    """A URL as logged: without its query (it could carry a credential)."""
    return url.split("?", 1)[0]
