"""The command line's paths against the real services: `demo` with a worker, `explain`
asking a worker (`--url`) or none, and exit code 2 on bad configuration or input."""

from __future__ import annotations

import orjson
import pytest

from tests.builders import attempt, course, heartbeat, resource
from tests.conftest import xpbank
from tests.e2e.harness import Worker, eventually, free_port, get_or_none, produce, wait_caught_up

pytestmark = pytest.mark.e2e


def test_demo_streams_a_classroom_through_a_worker_and_prints_what_it_decided(env, settings, tmp_path):
    assert xpbank(env, "topics", "create").returncode == 0
    worker = Worker(env, "w", tmp_path).start()
    try:
        eventually(lambda: _ready(worker), timeout=60, every=0.5)  # as `make run` waits before its demo
        demo = xpbank(env, "demo", "--learners", "3", "--speed", "600", "--seed", "5", timeout=180)
        assert demo.returncode == 0, demo.stderr.decode()[-2000:]
        out = demo.stdout.decode()
        assert "xpbank demo: 3 learners" in out and "XP exercise" in out and "XP banked" in out
        board = out.split("leaderboard (current facts)")[1].splitlines()[1:4]
        assert [row.split()[0] for row in board] and all(row.split()[-1] == "XP" for row in board)
        wait_caught_up(settings)
    finally:
        worker.stop()


def test_explain_asks_the_worker_at_url_and_says_when_none_answers(env, settings, tmp_path):
    lines = [course("c1", [[resource("v1", 1, "Video", 5), resource("ex1", 2, "Exercise", 2)]]),
             heartbeat("u1", "v1", 200, 10), *attempt("u1", "ex1", 300, [True, True])]
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, lines)
    worker = Worker(env, "w", tmp_path).start()
    try:
        wait_caught_up(settings)
        url = f"http://127.0.0.1:{worker.env['XPBANK_WEB_PORT']}"
        asked = xpbank(env, "explain", "u1", "ex1", "--url", url, "--json")
        assert asked.returncode == 0, asked.stderr.decode()
        offline = xpbank(env, "explain", "u1", "ex1", "--log", str(log), "--json")
        assert orjson.loads(asked.stdout) == orjson.loads(offline.stdout)
        assert [r["decision"] for r in orjson.loads(asked.stdout)["resources"]] == [3]
    finally:
        worker.stop()
    nobody = f"http://127.0.0.1:{free_port()}"
    unanswered = xpbank(env, "explain", "u1", "ex1", "--url", nobody)
    assert unanswered.returncode == 1
    assert f"no worker answered at {nobody}".encode() in unanswered.stderr and b"--log FILE" in unanswered.stderr
    default_port = xpbank(env | {"XPBANK_WEB_PORT": str(free_port())}, "explain", "u1", "ex1")
    assert default_port.returncode == 1 and b"no worker answered" in default_port.stderr


@pytest.mark.parametrize(("variable", "value"), [("XPBANK_PARTITIONS", "0"), ("XPBANK_OUTPUT_RETENTION_DAYS", "0"),
                                                 ("XPBANK_PROJECTOR", "maybe")])
def test_bad_configuration_exits_2_naming_the_variable(env, variable, value):
    for command in (("topics", "create"), ("worker",)):
        result = xpbank(env | {variable: value}, *command, timeout=60)
        assert result.returncode == 2 and variable.encode() in result.stderr and b"Traceback" not in result.stderr


def test_a_file_that_is_not_record_lines_exits_2_naming_the_line(env, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"topic": "learning.caliper.v1", "key": "u1", "value": {}}\n{"topic": "nowhere", "value": 1}\n')
    for command in ("produce", "simulate"):
        result = xpbank(env, command, str(bad))
        assert result.returncode == 2, result.stderr
        assert b"line 2: unknown topic 'nowhere'" in result.stderr and b"Traceback" not in result.stderr


def test_produce_into_topics_that_do_not_exist_says_so_at_once(env, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_bytes(orjson.dumps(heartbeat("u1", "v1", 30, 10)))
    result = xpbank(env, "produce", str(good), timeout=60)  # no `topics create` for this prefix
    assert result.returncode == 1 and b"Traceback" not in result.stderr
    assert f"topic {env['XPBANK_TOPIC_PREFIX']}learning.caliper.v1 does not exist".encode() in result.stderr


def _ready(worker: Worker) -> None:
    assert get_or_none(worker, "/healthz") == 200
