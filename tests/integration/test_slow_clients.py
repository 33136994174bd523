"""Slow clients cannot hold a door: 300 connections trickle request heads or bodies into a
real `xpbank gateway` and a real `xpbank api`; while they hold, a well-behaved request is
still answered, and the servers close every trickling socket by their own timeouts (the
head timeout, the body's minimum rate, the uploads one token may have at once), long
before the 75 s keep-alive would."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from tests.caliper_fixtures import envelope, timeback_time_spent
from tests.conftest import drop_redis_keys, make_env
from tests.gateway_proc import TOKEN, Api, Gateway
from xpbank.config import Settings
from xpbank.contract.topics import registry_setups
from xpbank.kafka.admin import converge

pytestmark = pytest.mark.integration

CLIENTS = 300
HEAD_SECONDS = 2  # XPBANK_HTTP_HEADER_TIMEOUT_SECONDS for both servers
CLOSED_WITHIN = 25.0  # every trickling socket closed by then (a 30 kB body may take 2 + 2 s; the keep-alive is 75 s)
ANSWERED_WITHIN = 10.0  # a generous bound that fails only when the servers are starved
LIMITS = {"XPBANK_HTTP_HEADER_TIMEOUT_SECONDS": str(HEAD_SECONDS), "XPBANK_GATEWAY_READS_PER_TOKEN": "8"}
GOOD = "good-sender-token-0123456789abcdef0123"


@pytest.fixture(scope="module")
def servers(broker, redis_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slow")
    env, tag = make_env(broker, redis_url, tmp)
    settings = Settings.from_env(env)
    asyncio.run(converge(settings, registry_setups(settings.topic_prefix, settings.partitions, 1, -1)))
    tokens = tmp / "tokens.json"  # the well-behaved sender's own token: the attackers' is TOKEN
    tokens.write_text(orjson.dumps({GOOD: {"name": "good", "may": ["caliper"]}}).decode())
    tokens.chmod(0o600)
    gateway = Gateway(env, tmp, XPBANK_METRICS_PUBLIC="1", XPBANK_GATEWAY_TOKENS_FILE=str(tokens), **LIMITS).start()
    api = Api(env, tmp, **LIMITS).start()
    yield gateway, api
    gateway.stop()
    api.stop()
    drop_redis_keys(redis_url, tag)
    assert "Traceback" not in gateway.log() + api.log()


async def trickler(port: int, head: bytes, drip: bytes, closed: list[float]) -> None:
    """Connect, send `head`, then one byte of `drip` every half second until the server
    closes the connection (whatever it answered first); the time it closed is recorded."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)

    async def dripping() -> None:
        for n in range(len(drip)):
            await asyncio.sleep(0.5)
            try:
                writer.write(drip[n:n + 1])
                await writer.drain()
            except ConnectionError:
                return

    task = asyncio.create_task(dripping())
    try:
        async with asyncio.timeout(CLOSED_WITHIN + 20):
            while await reader.read(65536):
                pass
        closed.append(time.monotonic())
    except ConnectionError:  # closed with our bytes unread (a reset): closed by the server all the same
        closed.append(time.monotonic())
    except TimeoutError:
        pass  # still open: not counted
    finally:
        task.cancel()
        writer.close()


async def well_behaved(port: int, request: bytes) -> tuple[int, float]:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    status = int((await reader.readline()).split(b" ", 2)[1])
    writer.close()
    return status, time.monotonic() - started


def post(path: str, body: bytes, content_type: str, token: str | None = None, length: int | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: {content_type}\r\n"
            f"Content-Length: {length if length is not None else len(body)}\r\n\r\n").encode() + body


async def siege(port: int, body_head: bytes, good: bytes) -> tuple[list[float], int, float, float]:
    closed: list[float] = []
    started = time.monotonic()
    half = CLIENTS // 2
    heads = [trickler(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"X-Slow: " + b"a" * 200, closed)
             for _ in range(half)]
    bodies = [trickler(port, body_head, b'"' + b"b" * 200, closed) for _ in range(CLIENTS - half)]
    clients = asyncio.gather(*heads, *bodies)
    await asyncio.sleep(1.0)  # all connected and trickling
    status, seconds = await well_behaved(port, good)
    await clients
    return closed, status, seconds, started


@pytest.mark.parametrize("door", ["gateway", "api"])
async def test_300_trickling_connections_do_not_starve_a_good_request_and_are_closed_by_the_server(servers, door):
    gateway, api = servers
    if door == "gateway":
        body = orjson.dumps(envelope([timeback_time_spent("slow-clients")]))
        port, good = gateway.port, post("/caliper/v1p2", body, "application/json", GOOD)
        body_head = post("/caliper/v1p2", b"{", "application/json", TOKEN, length=30_000)
    else:
        port, good = api.port, f"GET /users/u1/xp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {api.token}\r\n\r\n".encode()
        body_head = post("/ui/login", b"token=", "application/x-www-form-urlencoded", length=10_000)
    closed, status, seconds, started = await siege(port, body_head, good)
    assert status == 200 and seconds < ANSWERED_WITHIN, (status, seconds)
    assert len(closed) == CLIENTS  # none outlived the timeout; each was closed by the server
    assert max(closed) - started < CLOSED_WITHIN
    if door == "gateway":
        counted = gateway.metrics()
        assert counted['xpbank_gateway_timeouts_total{phase="head"}'] >= CLIENTS // 2
        assert counted['xpbank_gateway_timeouts_total{phase="body"}'] >= 8  # the uploads it let in
        assert counted['xpbank_gateway_rate_limited_total{limit="reads"}'] >= 1  # the rest: 429 at once
