"""The read models on the real Redis (and the projector on the real broker): totals are the
sum over the current facts whatever the order, redelivery or generation; the attempt
pointer follows open / complete / discard; a rebuild gives the same read models."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import defaultdict

import pytest

from tests.builders import attempt, course, resource, simulate, submission
from tests.e2e.test_parity_and_replay import classroom_log
from xpbank.core.rules import Rules
from xpbank.contract.records import InputRecord
from xpbank.kafka.admin import group_lag
from xpbank.kafka.clients import produce
from xpbank.runtime.topology import create_topics
from xpbank.contract.outputs import AttemptCompleted, AttemptDiscarded, AttemptOpened, AttemptProgressed, XpFact
from tests.attempt_views import attempt_view
from xpbank.read.projection import plan_attempt, plan_fact
from xpbank.read.projector import project, projected_topics, projector_group, rebuild
from xpbank.read.read_models import ReadModels
from xpbank.contract.topics import ATTEMPTS, FACTS

pytestmark = pytest.mark.integration


def facts_of(outputs) -> list[XpFact]:
    return [o.value for o in outputs if isinstance(o.value, XpFact)]


def expected_views(facts: list[XpFact]) -> dict[str, dict]:
    """What GET /users/{user}/xp must say: sums over the current facts (SPEC §3.5)."""
    views: dict[str, dict] = {}
    for fact in current_facts_of(facts).values():
        view = views.setdefault(fact.userSourcedId, {"userSourcedId": fact.userSourcedId, "totalXp": 0, "byDate": defaultdict(int)})
        view["totalXp"] += fact.xp
        view["byDate"][fact.date.isoformat()] += fact.xp
    for view in views.values():
        view["byDate"] = {d: xp for d, xp in sorted(view["byDate"].items()) if xp}
    return views


def current_facts_of(facts: list[XpFact]) -> dict[str, XpFact]:
    """Per factId the greatest (generation, revision): the rule every fact consumer follows."""
    held: dict[str, XpFact] = {}
    for fact in facts:
        if fact.factId not in held or (fact.generation, fact.revision) > (held[fact.factId].generation, held[fact.factId].revision):
            held[fact.factId] = fact
    return held


async def views_of(models: ReadModels, users) -> dict[str, dict]:
    return {user: await models.user_xp(user) for user in users}


EPOCH = "test-epoch"


@pytest.fixture
async def models(settings):
    """Read models marked complete under EPOCH (as a rebuild leaves them)."""
    models = ReadModels.connect(settings)
    await models.begin_rebuild(EPOCH, "a test")
    await models.finish_rebuild(EPOCH, (await models.status()).running)
    yield models
    await models.close()


def two_generations() -> tuple[list[XpFact], list[XpFact]]:
    """Generation 1 decided from the first part of a classroom, generation 2 (a replay)
    from all of it: some facts change, some are new."""
    lines = classroom_log(learners=8, seed=5)
    first = facts_of(simulate(lines[: len(lines) * 3 // 5], Rules())[0])
    second = facts_of(simulate(lines, Rules(generation=2))[0])
    return first, second


async def test_totals_are_the_sum_of_current_facts_whatever_the_order_redelivery_and_generation(models):
    first, second = two_generations()
    everything = first + second
    assert any(f.revision > 1 for f in everything) and {f.generation for f in second} == {2}  # late events made revisions
    want = expected_views(everything)
    assert any(v["totalXp"] for v in want.values())
    rng = random.Random(7)
    for round_ in range(3):
        await models.clear()
        shuffled = everything + rng.sample(everything, len(everything) // 2)  # redelivered copies
        rng.shuffle(shuffled)
        if round_ == 0:  # in publication order, with the gen-1 run redelivered after gen 2
            shuffled = first + second + first
        await models.apply((plan_fact(models.keys, f) for f in shuffled), EPOCH)
        assert await views_of(models, want) == want, f"round {round_}"
    current = current_facts_of(everything)
    banked = {f.resourceSourcedId: f.xp for f in current.values() if f.kind == "banked" and f.userSourcedId == "learner-000"}
    raw = await models.client.hgetall(models.keys.banked("learner-000"))
    assert {k.decode(): int(v) for k, v in raw.items()} == banked


async def test_the_active_attempt_pointer_follows_open_complete_and_discard(models):
    quiz = course("c1", [[resource("v1", 1, "Video", 5), resource("ex1", 2, "Exercise", 2)]])
    lines = [quiz, submission("AttemptStarted", "u1", "ex1", 10, totalQuestions=2),
             submission("AnswerSubmitted", "u1", "ex1", 11, questionId="q0", correct=True),
             submission("AttemptReset", "u1", "ex1", 12),
             *attempt("u1", "ex1", 20, [True, False]),
             submission("AttemptStarted", "u1", "ex1", 40, totalQuestions=2)]
    outputs, simulator = simulate(lines)
    events = [o.value for o in outputs if o.topic == ATTEMPTS]
    assert [type(e) for e in events] == [AttemptOpened, AttemptProgressed, AttemptDiscarded, AttemptOpened,
                                         AttemptProgressed, AttemptProgressed, AttemptCompleted, AttemptOpened]
    pointer, views = [], []
    for offset, event in enumerate(events):
        await models.apply([plan_attempt(models.keys, event, offset)], EPOCH)
        pointer.append(await models.active_attempt("u1", "ex1"))
        views.append(await models.attempt("u1", "ex1"))
    wanted = [None if isinstance(e, AttemptCompleted | AttemptDiscarded) else e.attempt for e in events]
    assert pointer == wanted == [1, 1, None, 1, 1, 1, None, 2]
    assert [(status, body["status"]) for status, body in views] == [
        (200, "open"), (200, "open"), (404, "none"), (200, "open"), (200, "open"), (200, "open"), (200, "completed"),
        (200, "open")]
    assert views[-1] == attempt_view("u1", "ex1", simulator.store.attempts("u1", "ex1"))
    assert await models.client.get("".join([models.keys.prefix, "assess:active:u1:ex1"])) == b"2"  # seed 003's key
    # redelivered older events change nothing
    await models.apply((plan_attempt(models.keys, e, offset) for offset, e in enumerate(events[:7])), EPOCH)
    assert await models.active_attempt("u1", "ex1") == 2
    # a replay's events (generation 2, published later) supersede generation 1
    replayed = [e.model_copy(update={"generation": 2}) for e in events[:7]]  # up to the completion
    await models.apply((plan_attempt(models.keys, e, 100 + offset) for offset, e in enumerate(replayed)), EPOCH)
    assert await models.active_attempt("u1", "ex1") is None


async def _until_projected(settings, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while sum((await group_lag(settings, projector_group(settings), projected_topics(settings))).values()):
        assert asyncio.get_running_loop().time() < deadline, "projector did not catch up"
        await asyncio.sleep(0.5)


async def test_projector_follows_the_topics_and_a_rebuild_from_empty_redis_gives_the_same_models(settings, models):
    settings = dataclasses.replace(settings, partitions=2)
    lines = classroom_log(learners=6, seed=9)
    outputs = [o for o in simulate(lines)[0] if o.topic in (FACTS, ATTEMPTS)]
    records = [InputRecord(topic=o.topic, key=o.key.encode(), value=o.value.model_dump_json().encode(), timestamp=None)
               for o in outputs]
    await create_topics(settings)
    await produce(settings, records)
    task = asyncio.create_task(project(settings))
    try:
        await _until_projected(settings)
        await produce(settings, records[: len(records) // 2])  # redelivered outputs
        await _until_projected(settings)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    want = expected_views(facts_of(outputs))
    assert await views_of(models, want) == want
    live = await snapshot(models)
    assert any(b"assess:active:" in k for k in live)  # classroom learners left attempts open
    counts = await rebuild(settings)
    assert counts["keys_deleted"] == len(live)  # every key but meta, positions included
    assert await snapshot(models) == live  # the same data, and the same positions


async def snapshot(models: ReadModels) -> dict[bytes, object]:
    """Every key under the prefix with its value (hashes as dicts, sets as sets), but
    `meta` (its epoch changes with each rebuild)."""
    values = {}
    async for key in models.client.scan_iter(match=models.keys.pattern):
        if key == models.keys.meta.encode():
            continue
        kind = await models.client.type(key)
        read = {b"hash": models.client.hgetall, b"set": models.client.smembers}.get(kind, models.client.get)
        values[key] = await read(key)
    return values
