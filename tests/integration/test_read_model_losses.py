"""The read models' guard against a Redis that lost data, on the real Redis and broker:
readers refuse (503 with a reason) while the read models are lost, rebuilding or not yet
checked on a restarted server, never answering a partial total; an upsert never lands in
a Redis whose epoch is not the projector's; and however many projectors run, one rebuilds."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tests.e2e.test_parity_and_replay import classroom_log
from tests.integration.test_read_models import expected_views, facts_of
from tests.builders import simulate
from xpbank.contract.topics import ATTEMPTS, FACTS
from xpbank.kafka.admin import group_lag
from xpbank.kafka.clients import produce
from xpbank.contract.records import InputRecord
from xpbank.read.projection import plan_fact
from xpbank.read.projector import Projector, projected_topics, projector_group
from xpbank.read.read_models import EpochChanged, ReadModels, ReadModelsUnavailable
from xpbank.runtime.topology import create_topics

pytestmark = pytest.mark.integration


@pytest.fixture
async def models(settings):
    models = ReadModels.connect(settings)
    yield models
    await models.close()


def classroom_facts():
    return facts_of(simulate(classroom_log(learners=4, seed=3))[0])


async def test_readers_refuse_until_the_read_models_are_complete_and_checked(models):
    facts = classroom_facts()
    user = facts[0].userSourcedId
    with pytest.raises(ReadModelsUnavailable, match="not in Redis"):  # never built (or lost)
        await models.user_xp(user)
    await models.begin_rebuild("e1", "a test")
    await models.apply([plan_fact(models.keys, f) for f in facts[: len(facts) // 2]], "e1")  # half applied
    with pytest.raises(ReadModelsUnavailable, match="being rebuilt"):  # a partial total is never served
        await models.user_xp(user)
    assert await models.finish_rebuild("e1", (await models.status()).running)
    await models.client.hset(models.keys.meta, "server", "another-server")  # checked on another server (a restart)
    with pytest.raises(ReadModelsUnavailable, match="restarted or failed over"):
        await models.user_xp(user)
    [restarted] = (await models.status()).unchecked
    assert await models.mark_checked("e1", restarted) == 1  # the projector found it kept everything
    assert (await models.user_xp(user))["userSourcedId"] == user


async def test_an_upsert_never_lands_in_a_redis_that_lost_its_epoch(models):
    facts = classroom_facts()
    await models.begin_rebuild("e1", "a test")
    await models.finish_rebuild("e1", (await models.status()).running)
    await models.apply([plan_fact(models.keys, facts[0])], "e1")
    await models.client.delete(models.keys.meta)  # as FLUSHALL or an empty restart leaves it
    with pytest.raises(EpochChanged):
        await models.apply([plan_fact(models.keys, f) for f in facts[1:]], "e1")
    assert await models.client.exists(models.keys.fact(facts[1].factId, facts[1].userSourcedId)) == 0
    await models.begin_rebuild("e2", "a test")
    with pytest.raises(EpochChanged):  # a rebuild started over: the old epoch's upserts are refused too
        await models.apply([plan_fact(models.keys, facts[1])], "e1")


async def test_a_projector_waits_while_another_rebuilds_and_rebuilds_once_after(settings, models):
    """One projector at a time: while another holds the rebuild lock, a projector that
    finds the read models lost waits (readers keep answering 503); once the lock is free
    it rebuilds, once, and the read models are the sums of the facts."""
    settings = dataclasses.replace(settings, partitions=2)
    lines = classroom_log(learners=6, seed=9)
    outputs = [o for o in simulate(lines)[0] if o.topic in (FACTS, ATTEMPTS)]
    await create_topics(settings)
    await produce(settings, [InputRecord(topic=o.topic, key=o.key.encode(), value=o.value.model_dump_json().encode(),
                                         timestamp=None) for o in outputs])
    want = expected_views(facts_of(outputs))
    assert await models.lock("another projector", 60_000)
    projector = Projector(settings)
    task = asyncio.create_task(projector.run())
    try:
        await asyncio.sleep(5)  # several turns of its loop
        assert projector.metrics["read_models_rebuilds"] == 0 and not projector.health.ready
        with pytest.raises(ReadModelsUnavailable):
            await models.user_xp(next(iter(want)))
        await models.unlock("another projector")
        deadline = asyncio.get_running_loop().time() + 60
        while not projector.health.ready or sum((await group_lag(settings, projector_group(settings),
                                                                 projected_topics(settings))).values()):
            assert asyncio.get_running_loop().time() < deadline, "the projector did not rebuild and catch up"
            await asyncio.sleep(0.5)
        assert projector.metrics["read_models_rebuilds"] == 1
        assert {u: await models.user_xp(u) for u in want} == want
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
