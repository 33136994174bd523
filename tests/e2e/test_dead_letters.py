"""`xpbank dead-letters`: a finalize dead-lettered `unknown_course` because its course was
published late is re-driven once the course is there, and the learner's facts appear;
a second re-drive sends nothing (the runbook of docs/operations.md, Re-drive dead letters)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from tests.builders import attempt, course, heartbeat, resource, simulate
from tests.conftest import xpbank
from tests.e2e.harness import Worker, current, produce, topic_values, wait_caught_up, without_revision
from xpbank.kafka.admin import Admin
from xpbank.kafka.clients import read_topic
from xpbank.processing.simulate import current_facts

pytestmark = pytest.mark.e2e

LATE_COURSE = course("c1", [[resource("v1", 1, "Video", 5), resource("ex1", 2, "Exercise", 3)]])
LEARNER = [heartbeat("u1", "v1", 120, 10), *attempt("u1", "ex1", 200, [True, True, True])]


def run(env, *args: str) -> tuple[str, str]:
    result = xpbank(env, "dead-letters", *args)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode(), result.stderr.decode()


def input_ends(settings) -> int:
    async def ends():
        admin = Admin(settings)
        return await admin.offsets(await admin.partitions([settings.topic_prefix + "learning.submissions.v1"]), earliest=False)
    return sum(asyncio.run(ends()).values())


def redriven_records(settings) -> list:
    async def collect():
        return [m async for m in read_topic(settings, settings.topic_prefix + "learning.submissions.v1")
                if any(k == "xpbank-redriven-from" for k, _ in m.headers or ())]
    return asyncio.run(collect())


def test_a_late_course_then_redrive_banks_the_learner_once(env, settings, tmp_path):
    assert xpbank(env, "topics", "create").returncode == 0
    worker = Worker(env, "w1", tmp_path).start()
    try:
        produce(env, [*LEARNER, {"topic": "learning.caliper.v1", "key": "u2", "raw": "{not json"}])
        wait_caught_up(settings)
        assert [f for f in topic_values(settings, "xp.facts.v1")] == []  # the finalize waits in the dead letters

        listed, _ = run(env, "list", "--reason", "unknown_course", "--user", "u1", "--since", "2h")
        [letter_line] = listed.splitlines()
        assert "unknown_course" in letter_line and "learning.submissions.v1" in letter_line and "users=u1" in letter_line
        position = letter_line.split()[0]  # xp.dead-letters.v1/P/O
        assert run(env, "list", "--user", "u2")[0].count("malformed_json") == 1
        [shown] = [orjson.loads(run(env, "show", position)[0])]
        assert shown["deadLetter"].endswith(position.split("/", 1)[1]) and '"AttemptFinalized"' in shown["payload"]

        before = input_ends(settings)
        out, err = run(env, "redrive", "--reason", "unknown_course", "--dry-run")
        assert f"would re-drive {position} (unknown_course) -> learning.submissions.v1" in out
        assert input_ends(settings) == before  # a dry run sends nothing

        produce(env, [LATE_COURSE])  # the cause is fixed: the course is published
        out, err = run(env, "redrive", "--reason", "unknown_course")
        assert "1 re-driven, 0 re-driven before" in err
        wait_caught_up(settings)
        outputs, _ = simulate([LATE_COURSE, *LEARNER])  # as if the course had come first
        want = {fid: f.model_dump(mode="json") for fid, f in current_facts(outputs).items()}
        assert len(want) == 2  # the exercise's XP and the video banked before it
        assert without_revision(current(topic_values(settings, "xp.facts.v1"))) == without_revision(want)

        [copy] = redriven_records(settings)
        assert dict(copy.headers)["xpbank-redriven-from"].decode() == settings.topic_prefix + position
        assert copy.key == b"u1" and orjson.loads(copy.value)["type"] == "AttemptFinalized"

        ends = input_ends(settings)
        out, err = run(env, "redrive", "--reason", "unknown_course")
        assert "0 re-driven, 1 re-driven before" in err and out == ""
        assert input_ends(settings) == ends and len(redriven_records(settings)) == 1
        assert "re-driven to learning.submissions.v1/" in run(env, "list", "--reason", "unknown_course")[0]
    finally:
        worker.stop()
