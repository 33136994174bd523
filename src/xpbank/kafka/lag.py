"""A consumer group's lag per partition for `/metrics`, kept cheap: one admin client for
the life of the process (not one per scrape), and an answer reused for a few seconds,
so several scrapers (Prometheus pairs, the web page) cost one round of offset requests."""

from __future__ import annotations

import time
from collections.abc import Iterable

from xpbank.config import Settings
from xpbank.kafka.admin import Admin

CACHE_SECONDS = 5.0


class PartitionLagProbe:
    def __init__(self, settings: Settings, group: str, topics: Iterable[str], cache_seconds: float = CACHE_SECONDS) -> None:
        self.settings, self.group, self.topics = settings, group, tuple(topics)
        self.cache_seconds = cache_seconds
        self._admin: Admin | None = None
        self._answer: dict[tuple[str, int], int] | None = None
        self._at = float("-inf")

    async def lag(self) -> dict[tuple[str, int], int]:
        """{(topic, partition): records not yet committed}, counted from the log start
        (`Admin.partition_lag`). Raises what the broker answered; nothing is cached then."""
        if self._answer is not None and time.monotonic() - self._at < self.cache_seconds:
            return self._answer
        if self._admin is None:
            self._admin = Admin(self.settings, timeout=5)
        rows = await self._admin.partition_lag(self.group, self.topics)
        self._answer, self._at = {(row.topic, row.partition): row.lag for row in rows}, time.monotonic()
        return self._answer
