"""Shared fixtures. The broker is real and started by the project's own script:
XPBANK_BROKER when set (e.g. docker compose), else deploy/kafka/kafka.sh."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from xpbank.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def _start(script: str) -> None:
    result = subprocess.run(["bash", str(ROOT / script), "up"], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"{script} up failed:\n{result.stdout}\n{result.stderr}")


def _kafka_answers(bootstrap: str) -> bool:
    async def probe() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await asyncio.wait_for(admin.start(), 5)
            await asyncio.wait_for(admin.list_topics(), 5)
            return True
        except Exception:
            return False
        finally:
            await admin.close()
    return asyncio.run(probe())


@pytest.fixture(scope="session")
def broker() -> str:
    """A real broker: XPBANK_BROKER, else one already answering on 127.0.0.1:9092 (another
    checkout's, or docker compose), else the project's own script starts one."""
    if not os.environ.get("XPBANK_BROKER") and not _kafka_answers("127.0.0.1:9092"):
        _start("deploy/kafka/kafka.sh")
    return os.environ.get("XPBANK_BROKER", "kafka://127.0.0.1:9092")


@pytest.fixture
def env(broker: str, tmp_path: Path) -> dict[str, str]:
    """Environment for one test: its own topic prefix, so tests never see each other's records."""
    return {
        **os.environ,
        "XPBANK_BROKER": broker,
        "XPBANK_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:10]}.",
        "XPBANK_PARTITIONS": "4",
        "XPBANK_DATA_DIR": str(tmp_path / "data"),
    }


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


def xpbank(env: dict[str, str], *args: str, input: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real `xpbank` command line."""
    command = [str(ROOT / ".venv/bin/xpbank"), *args]
    return subprocess.run(command, env=env, input=input, capture_output=True, timeout=timeout, check=False)
