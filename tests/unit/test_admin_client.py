"""The broker probe's admin clients: each names why the broker cannot be used, and is
freed as soon as its check is done (the probe makes one every 2 s, each with librdkafka
threads and sockets)."""

from __future__ import annotations

import asyncio
import gc
import socket

from xpbank.config import Settings
from xpbank.kafka.admin import Admin
from xpbank.kafka.background import BrokerProbe


def closed_port() -> int:
    """A local port nothing listens on: connections to it are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_failed_probe_names_the_cause_and_leaves_no_admin_client_for_the_cyclic_collector():
    probe = BrokerProbe(Settings.from_env({"XPBANK_BROKER": f"kafka://127.0.0.1:{closed_port()}"}), timeout=2)

    async def check() -> tuple[bool, int]:
        up = await probe.check()
        return up, sum(isinstance(o, Admin) for o in gc.get_objects())

    gc.collect()
    gc.disable()  # reference counting alone must free the client: no cycle through its callbacks or errors
    try:
        up, alive = asyncio.run(check())
    finally:
        gc.enable()
    assert up is False and probe.up is False
    assert "no broker answers at that address" in probe.problem
    assert alive == 0, "the probe's Admin (and its librdkafka client) outlived the check"
