"""Changes to aiokafka 0.14.0's behaviour while a broker is away, kept in one place.

`AIOKafkaClient._md_synchronizer` updates the cluster metadata as soon as any caller asks
(`force_metadata_update`), and callers ask again as soon as an update fails; with the
broker down, the clients of one worker (consumers, producer, gap reader, curriculum view)
spun through failed updates hundreds of times a second: a third of a core and an error
line each, for as long as the outage lasted. After a failed update the synchronizer now
waits (0.2 s, doubling up to 2 s while updates keep failing) before the next one, so the
callers waiting on it wait too.

`GroupCoordinator.commit_offsets` awaits `asyncio.shield(self._do_commit_offsets(...))`:
when the caller is cancelled (a worker stopping) the shielded commit goes on, and if its
connection then closes, its exception is never retrieved and asyncio logs it with a
traceback at garbage collection ("Task exception was never retrieved"). The commit now
runs as a task whose outcome is always retrieved; a commit that went on alone and failed
costs nothing (the partition's next owner reads from the last committed offset).

Read from aiokafka 0.14.0 (pinned in pyproject.toml); tests/unit/test_aiokafka_fixes.py
fails if a patched method moves."""

from __future__ import annotations

import asyncio

from aiokafka.client import AIOKafkaClient
from aiokafka.consumer.group_coordinator import GroupCoordinator

FIRST_WAIT, LONGEST_WAIT = 0.2, 2.0
_original = AIOKafkaClient._metadata_update  # noqa: SLF001
_original_commit = GroupCoordinator._do_commit_offsets  # noqa: SLF001


async def _metadata_update_with_backoff(self, cluster_metadata, topics):
    updated = await _original(self, cluster_metadata, topics)
    if updated:
        self._xpbank_metadata_wait = FIRST_WAIT
        return updated
    wait = getattr(self, "_xpbank_metadata_wait", FIRST_WAIT)
    self._xpbank_metadata_wait = min(wait * 2, LONGEST_WAIT)
    await asyncio.sleep(wait)
    return updated


def _retrieve(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()


def _commit_retrieved(self, assignment, offsets) -> asyncio.Task:
    """`_do_commit_offsets` as a task whose exception counts as retrieved; awaiting it
    (directly or through shield) still raises it."""
    task = asyncio.ensure_future(_original_commit(self, assignment, offsets))
    task.add_done_callback(_retrieve)
    return task


def install_aiokafka_fixes() -> None:
    """Install both changes (idempotent)."""
    AIOKafkaClient._metadata_update = _metadata_update_with_backoff  # noqa: SLF001
    GroupCoordinator._do_commit_offsets = _commit_retrieved  # noqa: SLF001
