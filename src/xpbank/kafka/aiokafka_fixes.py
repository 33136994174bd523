"""A change to aiokafka 0.14.0's behaviour while a broker is away, kept in one place.

`AIOKafkaClient._md_synchronizer` updates the cluster metadata as soon as any caller asks
(`force_metadata_update`), and callers ask again as soon as an update fails; with the
broker down, the clients of one worker (consumers, producer, gap reader, curriculum view)
spun through failed updates hundreds of times a second: a third of a core and an error
line each, for as long as the outage lasted. After a failed update the synchronizer now
waits (0.2 s, doubling up to 2 s while updates keep failing) before the next one, so the
callers waiting on it wait too. Read from aiokafka 0.14.0 (pinned in pyproject.toml);
tests/unit/test_aiokafka_fixes.py fails if the patched method moves."""

from __future__ import annotations

import asyncio

from aiokafka.client import AIOKafkaClient

FIRST_WAIT, LONGEST_WAIT = 0.2, 2.0
_original = AIOKafkaClient._metadata_update  # noqa: SLF001


async def _metadata_update_with_backoff(self, cluster_metadata, topics):
    updated = await _original(self, cluster_metadata, topics)
    if updated:
        self._xpbank_metadata_wait = FIRST_WAIT
        return updated
    wait = getattr(self, "_xpbank_metadata_wait", FIRST_WAIT)
    self._xpbank_metadata_wait = min(wait * 2, LONGEST_WAIT)
    await asyncio.sleep(wait)
    return updated


def back_off_failed_metadata_updates() -> None:
    """Install the backoff (idempotent)."""
    AIOKafkaClient._metadata_update = _metadata_update_with_backoff  # noqa: SLF001
