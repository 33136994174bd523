"""Per-token limits of the gateway: request and byte rates (token buckets) and the number
of bodies one token uploads at once. Past a limit a request is answered 429 with
Retry-After at once, before its body is read, and counted
(`xpbank_gateway_rate_limited_total{limit}`)."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from xpbank.gateway.problems import Refused


class TokenBucket:
    """`rate` units a second, up to `burst` saved. `take` may leave the level below zero
    for a cost only known afterwards (`charge`): the next takes wait for the debt."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.level, self.at = burst, clock()

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.burst, self.level + (now - self.at) * self.rate)
        self.at = now

    def take(self, amount: float) -> float:
        """Take `amount` and return 0, or take nothing and return the seconds to wait."""
        self._refill()
        if self.level >= amount:
            self.level -= amount
            return 0.0
        return (amount - self.level) / self.rate

    def charge(self, amount: float) -> None:
        self._refill()
        self.level -= amount


@dataclass
class TokenLimits:
    """Every token's buckets and uploads in progress, keyed by its grant."""

    requests_per_second: int
    bytes_per_second: int
    reads_per_token: int
    burst_bytes: int
    limited: Counter = field(default_factory=Counter)  # limit -> requests refused
    _requests: dict = field(default_factory=dict)
    _bytes: dict = field(default_factory=dict)
    _reading: Counter = field(default_factory=Counter)

    def admit(self, key: Hashable, size: int | None) -> None:
        """One more request of `key` with a body of `size` bytes (None: chunked, charged
        once read): 429 past its request rate, its byte rate or its uploads at once."""
        requests = self._requests.get(key) or self._requests.setdefault(
            key, TokenBucket(self.requests_per_second, self.requests_per_second))
        wait = requests.take(1)
        if wait:
            self._refuse("requests", wait, f"over XPBANK_GATEWAY_TOKEN_REQUESTS_PER_SECOND={self.requests_per_second}")
        volume = self._bytes.get(key) or self._bytes.setdefault(
            key, TokenBucket(self.bytes_per_second, self.burst_bytes))
        wait = volume.take(size if size is not None else 0)
        if wait or volume.level < 0:
            requests.charge(-1)  # not served: give the request back
            self._refuse("bytes", wait or -volume.level / self.bytes_per_second,
                         f"over XPBANK_GATEWAY_TOKEN_BYTES_PER_SECOND={self.bytes_per_second}")
        if self._reading[key] >= self.reads_per_token:
            requests.charge(-1)
            volume.charge(-(size or 0))
            self._refuse("reads", 1.0, f"{self.reads_per_token} bodies of this token are being uploaded "
                                       "(XPBANK_GATEWAY_READS_PER_TOKEN)")

    def charge_bytes(self, key: Hashable, size: int) -> None:
        """A chunked body's bytes, once read."""
        self._bytes[key].charge(size)

    def reading(self, key: Hashable) -> Reading:
        return Reading(self._reading, key)

    def _refuse(self, limit: str, wait: float, why: str) -> None:
        self.limited[limit] += 1
        raise Refused(429, f"this token is sending too fast: {why}; try again later",
                      headers={"Retry-After": str(max(1, math.ceil(wait)))})


class Reading:
    """One upload of a token in progress (a context manager)."""

    def __init__(self, counts: Counter, key: Hashable) -> None:
        self.counts, self.key = counts, key

    def __enter__(self) -> Reading:
        self.counts[self.key] += 1
        return self

    def __exit__(self, *exc) -> None:
        self.counts[self.key] -= 1
        if not self.counts[self.key]:
            del self.counts[self.key]
