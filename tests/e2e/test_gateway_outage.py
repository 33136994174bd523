"""The broker goes away under a gateway that senders keep busy: requests are answered 503
with Retry-After within the ack timeout (never left hanging, never 200 for what the
broker did not take), /healthz and /metrics say so, the process stays up, and once the
broker is back the same gateway sends again. Every event answered 200 is on the topic."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

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
SENDERS = 4


class Senders:
    """Threads posting one-event envelopes as fast as they are answered, each remembering
    which event ids were answered 200 and which were refused (and how long each took)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.accepted: set[str] = set()
        self.refused: list[tuple[int, float, dict]] = []  # status, seconds, headers
        self.failures: list[str] = []
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._send, args=(n,), daemon=True) for n in range(SENDERS)]

    def _send(self, n: int) -> None:
        while not self.done.is_set():
            event_id = f"urn:uuid:{uuid.uuid4()}"
            started = time.monotonic()
            try:
                status, headers, body = self.gateway.post(
                    "/caliper/v1p2", envelope([timeback_time_spent(f"sender-{n}", event_id=event_id)]))
            except OSError as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.2)
                continue
            if status == 200:
                self.accepted.add(event_id)
            else:
                self.refused.append((status, time.monotonic() - started, headers))
                time.sleep(0.2)

    def at_least(self, accepted: int) -> None:
        assert len(self.accepted) >= accepted, (len(self.accepted), self.refused[-1:])

    def __enter__(self) -> Senders:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(60)


def test_a_broker_outage_under_load_is_a_503_and_the_gateway_recovers_by_itself(redis_url, tmp_path):
    own = Broker(tmp_path / "kafka", 19592).up()  # stopped below: not the shared one
    gateway = None
    try:
        env, _ = make_env(own.url, redis_url, tmp_path)
        settings = Settings.from_env(env)
        ops = env["XPBANK_API_TOKENS"]
        asyncio.run(converge(settings, registry_setups(settings.topic_prefix, settings.partitions, 1, -1)))
        gateway = Gateway(env, tmp_path, XPBANK_GATEWAY_ACK_TIMEOUT_SECONDS="3").start()
        with Senders(gateway) as senders:
            eventually(lambda: senders.at_least(20), timeout=30, every=0.2)
            assert own.run("down").returncode == 0
            refused_before = len(senders.refused)

            def outage_shows() -> None:
                assert gateway.request("GET", "/healthz")[0] == 503
                assert gateway.metrics(ops)["xpbank_gateway_broker_up"] == 0
                assert len(senders.refused) > refused_before + SENDERS  # the senders are answered, with 503s
            eventually(outage_shows, timeout=30, every=0.5)
            time.sleep(5)
            assert gateway.process.poll() is None, gateway.log()
            accepted_before_up = len(senders.accepted)
            own.up()
            eventually(lambda: senders.at_least(accepted_before_up + 20), timeout=90)
        assert gateway.request("GET", "/healthz")[0] == 200
        assert gateway.metrics(ops)["xpbank_gateway_broker_up"] == 1
        assert gateway.process.poll() is None
        assert senders.failures == []  # every request got an answer
        assert {status for status, _, _ in senders.refused} == {503}
        assert all(headers["retry-after"] in ("1", "5") for _, _, headers in senders.refused)
        assert max(seconds for _, seconds, _ in senders.refused) < 3 + 20  # bounded by the ack timeout, not hanging
        on_topic = {event["id"] for m in records(settings, "learning.caliper.v1")
                    for event in orjson.loads(m.value)["data"]}
        assert senders.accepted - on_topic == set()  # every 200 was taken by the broker
    finally:
        if gateway is not None:
            gateway.stop()
        own.run("down", "--purge")
    assert "Traceback" not in gateway.log()
