"""The broker goes away under a running gateway: requests are answered 503 with
Retry-After within the ack timeout (never left hanging, never 200), /healthz says so, and
once the broker is back the same gateway process sends again."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from tests.caliper_fixtures import envelope, timeback_time_spent
from tests.conftest import Broker, make_env
from tests.e2e.harness import eventually
from tests.gateway_proc import Gateway, records
from xpbank.config import Settings
from xpbank.contract.topics import registry_setups
from xpbank.kafka.admin import converge

pytestmark = pytest.mark.e2e


def test_a_broker_outage_is_a_503_and_the_gateway_recovers_by_itself(redis_url, tmp_path):
    own = Broker(tmp_path / "kafka", 19592).up()  # stopped below: not the shared one
    gateway = None
    try:
        env, _ = make_env(own.url, redis_url, tmp_path)
        settings = Settings.from_env(env)
        asyncio.run(converge(settings, registry_setups(settings.topic_prefix, settings.partitions, 1, -1)))
        gateway = Gateway(env, tmp_path, XPBANK_GATEWAY_ACK_TIMEOUT_SECONDS="3").start()
        before = envelope([timeback_time_spent("before")])
        assert gateway.post("/caliper/v1p2", before)[0] == 200

        assert own.run("down").returncode == 0
        started = time.monotonic()
        status, headers, body = gateway.post("/caliper/v1p2", envelope([timeback_time_spent("during")]))
        assert status == 503 and headers["retry-after"] == "5", body
        assert time.monotonic() - started < 3 + 20  # bounded by the ack timeout (3 s), not left hanging
        assert orjson.loads(body)["detail"].startswith("the broker")

        def unhealthy() -> None:
            assert gateway.request("GET", "/healthz")[0] == 503
        eventually(unhealthy, timeout=30, every=0.5)

        own.up()
        after = envelope([timeback_time_spent("after")])

        def sends_again() -> None:
            assert gateway.post("/caliper/v1p2", after)[0] == 200
        eventually(sends_again, timeout=90, every=1)
        assert gateway.request("GET", "/healthz")[0] == 200
        keys = {m.key for m in records(settings, "learning.caliper.v1")}
        assert {b"before", b"after"} <= keys  # "during" may have arrived too: resending is safe
    finally:
        if gateway is not None:
            gateway.stop()
        own.run("down", "--purge")
    assert "Traceback" not in gateway.log()
