"""`make run` as a newcomer uses it: it prints the page's URL, plays the demo once, and
stays up (a trickle of learners) until Ctrl-C; the page and the printed curl answer after
the demo ended; Ctrl-C stops everything it started (here: the worker, the gateway and a
Redis it had to start) and nothing it found running (the shared broker)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT, drop_redis_keys

pytestmark = pytest.mark.e2e
REDIS_PORT, WEB_PORT, GATEWAY_PORT = 19810, 19811, 19812  # this suite's fixed range (19800-19899)


def answers(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def session_processes(sid: int) -> list[str]:
    """Processes still in the session `make run` was started in."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getsid(int(entry.name)) == sid:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (ProcessLookupError, PermissionError, FileNotFoundError):
            continue
    return found


class Output:
    """The lines `make run` printed so far, read on a thread."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self.process = process
        threading.Thread(target=lambda: self.lines.extend(iter(process.stdout.readline, "")), daemon=True).start()

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            if self.process.poll() is not None and time.monotonic() + 1 < deadline:
                deadline = time.monotonic() + 1  # it ended: the last lines are read, then no waiting
            time.sleep(0.2)
        raise AssertionError(f"no line matching {pattern!r} within {timeout}s:\n{''.join(self.lines[-40:])}")


def test_make_run_stays_up_after_the_demo_and_ctrl_c_stops_what_it_started(broker, redis_url, tmp_path):
    assert not any(answers(p) for p in (REDIS_PORT, WEB_PORT, GATEWAY_PORT)), "the test's ports are taken"
    tag = uuid.uuid4().hex[:10]
    env = {k: v for k, v in os.environ.items() if not k.startswith("XPBANK_")} | {
        "XPBANK_KAFKA_PORT": broker.rsplit(":", 1)[1],  # a broker answers there: make run must leave it alone
        "XPBANK_REDIS_PORT": str(REDIS_PORT),  # nothing answers there: make run starts a Redis, and stops it
        "XPBANK_RUN_DIR": str(tmp_path / "run"), "XPBANK_DATA_DIR": str(tmp_path / "data"),
        "XPBANK_TOPIC_PREFIX": f"t{tag}.", "XPBANK_PARTITIONS": "2",
        "XPBANK_WEB_PORT": str(WEB_PORT), "XPBANK_GATEWAY_PORT": str(GATEWAY_PORT)}
    from tests.conftest import SESSION_TAGS

    SESSION_TAGS.append(tag)  # its topics go at the session's end
    run = subprocess.Popen(["make", "-s", "run", "DEMO_ARGS=--learners 3 --speed 300"], cwd=ROOT, env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    output = Output(run)
    try:
        page = output.wait_for(r"page: (http://\S+)", 180)[1]
        curl = output.wait_for(r"try: curl -s -H \"Authorization: Bearer (\S+)\" (\S+)", 5)
        output.wait_for(r"leaderboard", 180)  # the demo ended
        output.wait_for(r"trickle: learner-003 starts", 30)  # and the next learners come
        time.sleep(2)
        with urllib.request.urlopen(page, timeout=10) as response:  # the token goes into a cookie, then the page
            assert response.status == 200 and b"<html" in response.read().lower()
        request = urllib.request.Request(curl[2], headers={"Authorization": f"Bearer {curl[1]}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200 and json.loads(response.read())["totalXp"] > 0  # the demo's XP
        assert answers(REDIS_PORT) and answers(WEB_PORT) and answers(GATEWAY_PORT)
    finally:
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C in its terminal
        try:
            run.wait(90)
        finally:
            left = session_processes(run.pid)
            if left:
                os.killpg(run.pid, signal.SIGKILL)
            subprocess.run(["bash", str(ROOT / "deploy/redis/redis.sh"), "down"], env=env, capture_output=True)
    output.wait_for(r"worker and gateway stopped", 5)
    assert left == []
    assert not answers(REDIS_PORT) and not answers(WEB_PORT) and not answers(GATEWAY_PORT)
    assert answers(int(env["XPBANK_KAFKA_PORT"]))  # found running, left running
    drop_redis_keys(redis_url, tag)
