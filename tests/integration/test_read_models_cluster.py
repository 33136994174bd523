"""The read models on the real Redis Cluster (make redis-up-cluster): the same scripts as on
one Redis give the sums of the current facts whatever the order and redelivery; each
slot's guard holds: a slot that lost its meta refuses upserts and reads (the others go
on), positions are recorded only on the servers the projector saw, and a shard answered
by another server is unready until marked checked."""

from __future__ import annotations

import random
import uuid

import pytest

from tests.clusters import drop_cluster_keys
from tests.integration.test_read_models import current_facts_of, expected_views, two_generations, views_of
from xpbank.config import Settings
from xpbank.read.projection import plan_fact
from xpbank.read.read_models import EpochChanged, Guard, ReadModels, ReadModelsUnavailable, Shard

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EPOCH = "cluster-epoch"


@pytest.fixture
async def models(redis_cluster):
    redis_cluster.up()
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    models = ReadModels.connect(Settings.from_env({"XPBANK_REDIS_URL": redis_cluster.url, "XPBANK_REDIS_PREFIX": prefix}))
    guard = await models.begin_rebuild(EPOCH, "a test")
    assert await models.finish_rebuild(EPOCH, guard)
    yield models
    await models.close()
    drop_cluster_keys(redis_cluster, prefix)


async def test_totals_are_the_sums_of_current_facts_across_the_shards(models):
    first, second = two_generations()
    everything = first + second
    want = expected_views(everything)
    shuffled = everything + random.Random(3).sample(everything, len(everything) // 2)
    random.Random(4).shuffle(shuffled)
    await models.apply((plan_fact(models.keys, f) for f in shuffled), EPOCH)
    assert await views_of(models, want) == want
    status = await models.status()
    assert status.ready and len(status.shards) == 3 and len(status.running) == 3
    nodes = {models.client.get_node_from_key(models.keys.total(user)).name for user in want}
    assert len(nodes) > 1  # the learners are spread over the shards


async def test_a_slot_that_lost_its_meta_refuses_upserts_and_reads_while_the_others_go_on(models):
    first, _ = two_generations()
    by_user: dict[str, list] = {}
    for fact in first:
        by_user.setdefault(fact.userSourcedId, []).append(fact)
    lost, kept = sorted(by_user)[:2]
    await models.client.delete(models.keys.slot_meta(models.keys.total(lost)))  # as a node back empty would
    with pytest.raises(EpochChanged):
        await models.apply([plan_fact(models.keys, f) for f in by_user[lost]], EPOCH)
    assert await models.client.get(models.keys.total(lost)) is None  # nothing of it applied
    with pytest.raises(ReadModelsUnavailable, match="not in Redis"):
        await models.user_xp(lost)
    assert await models.apply([plan_fact(models.keys, f) for f in by_user[kept]], EPOCH) == len(by_user[kept])
    assert (await models.user_xp(kept))["totalXp"] == sum(f.xp for f in current_facts_of(by_user[kept]).values())
    with pytest.raises(EpochChanged):
        await models.apply([plan_fact(models.keys, by_user[kept][0])], "another-epoch")


async def test_positions_and_checks_are_recorded_only_on_the_servers_the_projector_saw(models):
    status = await models.status()
    guard = Guard(EPOCH, status.shards)
    await models.advance({"t/0": 10}, guard)
    assert await models.positions() == {"t/0": 10}
    stranger = Guard(EPOCH, tuple(Shard(s.meta, s.positions, s.epoch, s.state, s.server, "another-run-id")
                                  for s in status.shards))
    with pytest.raises(EpochChanged):  # a restarted or failed-over node: not the server seen
        await models.advance({"t/0": 20}, stranger)
    assert await models.positions() == {"t/0": 10}

    # a shard answered by another server than the one checked (its metas say another run id)
    shard = status.shards[0]
    node = models.client.get_node_from_key(shard.meta)
    own = [meta for meta in models.keys.slot_metas() if models.client.get_node_from_key(meta) is node]
    pipe = models.client.pipeline()
    for meta in own:
        pipe.hset(meta, "server", "an-older-run-id")
    await pipe.execute()
    unchecked = await models.status()
    assert unchecked.name == "checking" and [s.meta for s in unchecked.unchecked] == [shard.meta]
    user = next(u for u in (f"learner-{n:03d}" for n in range(100))
                if models.client.get_node_from_key(models.keys.total(u)) is node)
    with pytest.raises(ReadModelsUnavailable, match="restarted or failed over"):
        await models.user_xp(user)
    assert await models.mark_checked(EPOCH, unchecked.unchecked[0]) == len(own)
    assert (await models.status()).ready
    assert (await models.user_xp(user))["totalXp"] == 0
