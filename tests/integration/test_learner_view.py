"""A learner's view on the real Redis: the projector's scripts keep the `exercises:{user}`
index (idempotently, stale events included), and `ReadModels.learner` gives the XP,
banked XP, attempts and banking evidence of each exercise, as the API answers them."""

from __future__ import annotations

import pytest

from tests.unit.test_projection import seed002
from xpbank.contract.outputs import AttemptEvent, BankingDecided, XpFact
from tests.attempt_views import attempt_view
from xpbank.read.projection import plan_attempt, plan_decision, plan_fact
from xpbank.read.read_models import ReadModels

pytestmark = pytest.mark.integration


EPOCH = "test-epoch"


@pytest.fixture
async def models(settings):
    """Read models marked complete under EPOCH (as a rebuild leaves them)."""
    models = ReadModels.connect(settings)
    await models.begin_rebuild(EPOCH, "a test")
    await models.finish_rebuild(EPOCH, (await models.status()).running)
    yield models
    await models.close()


async def test_the_learner_view_lists_every_exercise_with_its_attempts_and_evidence(models):
    simulator, values = seed002()
    keys = models.keys
    plans = [plan_fact(keys, v) for v in values if isinstance(v, XpFact)]
    plans += [plan_attempt(keys, v, n) for n, v in enumerate(values) if isinstance(v, AttemptEvent.__args__)]
    plans += [plan_decision(keys, v, n) for n, v in enumerate(values) if isinstance(v, BankingDecided)]
    assert await models.apply(plans, EPOCH) == len(plans)
    view = await models.learner("u1")
    assert view["known"] and view["xp"] == await models.user_xp("u1")
    assert [row["exerciseSourcedId"] for row in view["exercises"]] == ["ex1"]
    [row] = view["exercises"]
    assert row["open"] is None
    assert row["completed"] == attempt_view("u1", "ex1", simulator.store.attempts("u1", "ex1"))[1]
    assert row["explanation"] == await models.evidence("u1", "ex1")
    assert view["banked"] == {r["resourceSourcedId"]: r["decision"] for r in row["explanation"]["resources"]
                              if r["reason"] == "awarded"}

    await models.client.delete(keys.exercises("u1"))  # an index lost (or keys from before it existed)
    assert await models.apply(plans, EPOCH) == 0  # nothing is newer, yet the index comes back
    assert [row["exerciseSourcedId"] for row in (await models.learner("u1"))["exercises"]] == ["ex1"]


async def test_an_unknown_learner_is_known_to_be_unknown(models):
    view = await models.learner("nobody")
    assert view == {"userSourcedId": "nobody", "known": False, "xp": {"userSourcedId": "nobody", "totalXp": 0, "byDate": {}},
                    "banked": {}, "exercises": []}
