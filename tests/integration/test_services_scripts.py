"""The project's own service scripts: `make kafka-up` / `kafka-down` can be repeated.
Runs a second broker on other ports in its own run directory, so the shared one stays."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from xpbank.config import Settings
from xpbank.kafka.admin import group_lag
from xpbank.runtime.topology import create_topics

pytestmark = pytest.mark.integration


def kafka(run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"XPBANK_RUN_DIR": str(run_dir), "XPBANK_KAFKA_PORT": "19092", "XPBANK_KAFKA_CONTROLLER_PORT": "19093"}
    return subprocess.run(["bash", str(ROOT / "deploy/kafka/kafka.sh"), *args], env=env, capture_output=True, text=True, timeout=300)


def test_kafka_up_and_down_are_repeatable_and_stop_only_their_own_broker(tmp_path):
    try:
        first = kafka(tmp_path, "up")
        assert first.returncode == 0, first.stderr
        # A brand-new broker has no __consumer_offsets yet: lag queries wait for the coordinator.
        fresh = Settings.from_env({"XPBANK_BROKER": "kafka://127.0.0.1:19092", "XPBANK_PARTITIONS": "2"})
        asyncio.run(create_topics(fresh))
        assert asyncio.run(group_lag(fresh, "never-joined", ["learning.caliper.v1"])) == {"learning.caliper.v1": 0}
        again = kafka(tmp_path, "up")
        assert again.returncode == 0 and "already running" in again.stdout
        assert kafka(tmp_path, "status").returncode == 0
        pid = int((tmp_path / "kafka" / "kafka.pid").read_text())
        borrowed = kafka(tmp_path / "elsewhere", "up")  # another checkout: uses the running broker
        assert borrowed.returncode == 0 and "using it" in borrowed.stdout, borrowed.stderr
        assert kafka(tmp_path / "elsewhere", "down").stdout.strip().endswith("not running")  # not ours: untouched
        os.kill(pid, 0)
        assert kafka(tmp_path, "down").returncode == 0
        assert kafka(tmp_path, "status").returncode == 1
        assert "not running" in kafka(tmp_path, "down").stdout
        assert kafka(tmp_path, "up").returncode == 0  # warm start on the kept data
    finally:
        kafka(tmp_path, "down", "--purge")
    assert not (tmp_path / "kafka" / "data").exists()
