"""The aiokafka change of xpbank.kafka.aiokafka_fixes: what it relies on is still there
(a pinned aiokafka that moved would fail here), and a failed metadata update is followed
by a wait that doubles up to its bound and starts over after a success."""

from __future__ import annotations

import inspect

import aiokafka
from aiokafka.client import AIOKafkaClient

from xpbank.kafka import aiokafka_fixes


def test_the_patched_method_is_where_it_was_read():
    assert aiokafka.__version__ == "0.14.0"
    assert "self._metadata_update(" in inspect.getsource(AIOKafkaClient._md_synchronizer)
    assert list(inspect.signature(aiokafka_fixes._original).parameters) == ["self", "cluster_metadata", "topics"]


async def test_failed_updates_wait_longer_each_time_and_a_success_resets(monkeypatch):
    answers, waits = [False, False, False, False, False, True, False], []

    async def original(self, cluster, topics):
        return answers.pop(0)

    async def sleep(seconds):
        waits.append(seconds)

    monkeypatch.setattr(aiokafka_fixes, "_original", original)
    monkeypatch.setattr(aiokafka_fixes.asyncio, "sleep", sleep)
    client = object.__new__(AIOKafkaClient)
    for _ in range(7):
        await aiokafka_fixes._metadata_update_with_backoff(client, None, set())
    assert waits == [0.2, 0.4, 0.8, 1.6, 2.0, 0.2]  # none after the success


def test_installing_it_twice_keeps_one_backoff():
    aiokafka_fixes.back_off_failed_metadata_updates()
    aiokafka_fixes.back_off_failed_metadata_updates()
    assert AIOKafkaClient._metadata_update is aiokafka_fixes._metadata_update_with_backoff
