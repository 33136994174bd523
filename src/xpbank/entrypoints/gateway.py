"""`xpbank gateway`: serve the routes on XPBANK_GATEWAY_PORT until SIGTERM or SIGINT, then
stop listening, let the requests in flight finish (their records acknowledged), flush the
producer and exit."""

from __future__ import annotations

import asyncio
import logging
import time

import uvloop
from aiohttp import web

from xpbank.entrypoints.signals import stop_on_signals
from xpbank.gateway.access_log import AccessLines, AccessLogger
from xpbank.gateway.app import METRICS, TRAFFIC, create_app
from xpbank.gateway.settings import GatewaySettings
from xpbank.kafka.background import quiet_libraries
from xpbank.web import aiohttp_server

log = logging.getLogger("xpbank.gateway")
DRAIN_SECONDS = 30.0  # in-flight requests get this long after SIGTERM (k8s grace: 45 s)


async def serve(settings: GatewaySettings, host: str = "0.0.0.0", stop: asyncio.Event | None = None) -> None:
    lines = AccessLines()
    app = create_app(settings, lines)
    timeouts = app[METRICS].timeouts
    runner = aiohttp_server.runner(
        app, head_timeout=settings.http.header_timeout, keepalive=settings.http.keepalive,
        on_head_timeout=lambda: timeouts.update(("head",)), access_log_class=AccessLogger.writing_to(lines),
        access_log=logging.getLogger("xpbank.gateway.access"), shutdown_timeout=DRAIN_SECONDS, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, settings.port, backlog=1024, reuse_address=True)
    await site.start()
    log.info("gateway ready port=%d broker=%s tokens=%d", settings.port, settings.base.broker, len(settings.tokens))
    stop = stop_on_signals(stop)
    try:
        await stop.wait()
        await drain(app, site)
    finally:
        await runner.cleanup()  # closes the idle connections, then flushes the producer
        log.info("gateway stopped")


async def drain(app: web.Application, site: web.TCPSite) -> None:
    """Stop listening, then wait until the requests being handled are answered (bodies
    still arriving are read to the end) or DRAIN_SECONDS pass; answers meanwhile close
    their connections. (aiohttp's own shutdown stops reading request bodies at once.)"""
    traffic = app[TRAFFIC]
    traffic.draining = True
    await site.stop()
    log.info("gateway stopping: draining %d requests in flight", traffic.in_flight)
    deadline = time.monotonic() + DRAIN_SECONDS
    while traffic.in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if traffic.in_flight:
        log.warning("gateway stopping with %d requests unanswered after %.0f s", traffic.in_flight, DRAIN_SECONDS)


def run(settings: GatewaySettings, loglevel: str = "INFO", loop: str = "uvloop") -> None:
    """`loop`: uvloop (default: measured faster, see docs/gateway.md) or asyncio's own."""
    logging.basicConfig(level=loglevel.upper(), format="[%(asctime)s] [%(levelname)s] %(name)s: %(message)s")
    quiet_libraries(settings.base, ("aiokafka", "aiohttp"))
    if loop == "uvloop":
        uvloop.run(serve(settings))
    else:
        asyncio.run(serve(settings))
