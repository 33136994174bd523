"""The aiokafka changes of xpbank.kafka.aiokafka_fixes: what they rely on is still there
(a pinned aiokafka that moved would fail here); a failed metadata update is followed by a
wait that doubles up to its bound and starts over after a success; a commit left alone
by its cancelled caller fails without a traceback."""

from __future__ import annotations

import asyncio
import gc
import inspect

import aiokafka
import pytest
from aiokafka.client import AIOKafkaClient
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.errors import KafkaConnectionError

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
    aiokafka_fixes.install_aiokafka_fixes()
    aiokafka_fixes.install_aiokafka_fixes()
    assert AIOKafkaClient._metadata_update is aiokafka_fixes._metadata_update_with_backoff


def test_the_commit_is_still_shielded_where_it_was_read():
    source = inspect.getsource(GroupCoordinator.commit_offsets)
    assert "asyncio.shield(self._do_commit_offsets(" in source
    assert list(inspect.signature(aiokafka_fixes._original_commit).parameters) == ["self", "assignment", "offsets"]


async def test_a_shielded_commit_that_fails_after_its_caller_was_cancelled_logs_nothing(monkeypatch):
    unretrieved, release = [], asyncio.Event()
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: unretrieved.append(context))

    async def original(self, assignment, offsets):
        await release.wait()
        raise KafkaConnectionError("Connection at 127.0.0.1:9092 closed")

    monkeypatch.setattr(aiokafka_fixes, "_original_commit", original)
    coordinator = object.__new__(GroupCoordinator)
    caller = asyncio.ensure_future(asyncio.shield(aiokafka_fixes._commit_retrieved(coordinator, None, {})))
    await asyncio.sleep(0)
    caller.cancel()  # the worker stops; the shielded commit goes on
    release.set()
    for _ in range(3):
        await asyncio.sleep(0)
    del caller
    gc.collect()
    assert unretrieved == []
    with pytest.raises(KafkaConnectionError):  # awaited, the failure is still raised
        await asyncio.shield(aiokafka_fixes._commit_retrieved(coordinator, None, {}))
