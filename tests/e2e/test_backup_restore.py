"""Back up and restore (docs/operations.md): MirrorMaker 2 (deploy/kafka/mirror.sh) copies
the input topics to a second broker, and a replay there gives the facts the live cluster
gave: the input topics are the whole system of record."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

from tests.conftest import ROOT, Broker, xpbank
from tests.e2e.harness import current, expected, produce, topic_values, without_revision
from xpbank.cli.classroom import classroom
from xpbank.config import Settings
from xpbank.contract.topics import INPUTS
from xpbank.kafka.admin import Admin

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
BACKUP_PORT = 19820  # and 19821 for its controller: this suite's fixed range


def ends(settings: Settings) -> dict[tuple[int, int], int]:
    async def read():
        admin = Admin(settings)
        partitions = await admin.partitions(settings.topic_prefix + t for t in INPUTS)
        found = await admin.offsets(partitions, earliest=False)
        return {(t.removeprefix(settings.topic_prefix), p): end for (t, p), end in found.items()}
    return asyncio.run(read())


def replay(env: dict[str, str], data: str) -> None:
    assert xpbank(env, "topics", "create").returncode in (0, 1)  # 1: a mismatch is reported, see below
    result = xpbank(env | {"XPBANK_DATA_DIR": data}, "replay", "--generation", "1", timeout=300)
    assert result.returncode == 0 and b"caught up" in result.stderr, result.stderr.decode()[-2000:]


def test_a_replay_from_the_mirrored_input_topics_gives_the_same_facts(env, settings, tmp_path):
    backup = Broker(tmp_path / "backup", BACKUP_PORT).up()
    mirror_env = env | {"XPBANK_RUN_DIR": str(tmp_path / "mirror"), "XPBANK_MIRROR_SOURCE": settings.bootstrap_servers,
                        "XPBANK_MIRROR_TARGET": f"127.0.0.1:{BACKUP_PORT}"}
    try:
        lines = [a.line for a in classroom(learners=6, seed=5, pace=0.01)]
        assert xpbank(env, "topics", "create").returncode == 0
        produce(env, lines)
        replay(env, str(tmp_path / "live"))
        live_facts = current(topic_values(settings, "xp.facts.v1"))
        want, _, _ = expected(lines, settings)
        assert without_revision(live_facts) == without_revision(want) != {}

        started = subprocess.run(["bash", str(ROOT / "deploy/kafka/mirror.sh"), "up"], env=mirror_env,
                                 capture_output=True, text=True, timeout=600)
        assert started.returncode == 0, started.stdout + started.stderr
        backup_env = env | {"XPBANK_BROKER": backup.url}
        restored = Settings.from_env(backup_env)
        source = ends(settings)
        deadline = time.monotonic() + 240
        log = tmp_path / "mirror" / "mirror" / "mirror.log"
        while ends(restored) != source:  # every input partition copied to its end
            running = subprocess.run(["bash", str(ROOT / "deploy/kafka/mirror.sh"), "status"], env=mirror_env).returncode == 0
            assert running and time.monotonic() < deadline, (ends(restored), source, log.read_text()[-3000:])
            time.sleep(2)
        subprocess.run(["bash", str(ROOT / "deploy/kafka/mirror.sh"), "down"], env=mirror_env, capture_output=True, timeout=60)

        replay(backup_env, str(tmp_path / "restored"))
        assert without_revision(current(topic_values(restored, "xp.facts.v1"))) == without_revision(live_facts)
    finally:
        subprocess.run(["bash", str(ROOT / "deploy/kafka/mirror.sh"), "down"], env=mirror_env, capture_output=True, timeout=60)
        backup.run("down", "--purge")
