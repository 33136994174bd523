"""`xpbank gateway`: serve the routes on XPBANK_GATEWAY_PORT until SIGTERM or SIGINT, then
stop listening, let the requests in flight finish (their records acknowledged), flush the
producer and exit."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import uvloop
from aiohttp import web

from xpbank.config import DEFAULTS
from xpbank.gateway.access_log import AccessLines, AccessLogger
from xpbank.gateway.app import create_app
from xpbank.gateway.settings import GatewaySettings

log = logging.getLogger("xpbank.gateway")
DRAIN_SECONDS = 30.0  # in-flight requests get this long after SIGTERM (k8s grace: 45 s)


async def serve(settings: GatewaySettings, host: str = "0.0.0.0", stop: asyncio.Event | None = None) -> None:
    lines = AccessLines()
    runner = web.AppRunner(create_app(settings, lines), access_log_class=AccessLogger.writing_to(lines),
                           access_log=logging.getLogger("xpbank.gateway.access"), shutdown_timeout=DRAIN_SECONDS,
                           handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, settings.port, backlog=1024, reuse_address=True)
    await site.start()
    log.info("gateway ready port=%d broker=%s tokens=%d", settings.port, settings.base.broker, len(settings.tokens))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        log.info("gateway stopping: draining requests in flight")
    finally:
        await runner.cleanup()  # stops listening, waits for handlers, then flushes the producer
        log.info("gateway stopped")


def run(settings: GatewaySettings, loglevel: str = "INFO", loop: str = "uvloop") -> None:
    """`loop`: uvloop (default: measured faster, see docs/gateway.md) or asyncio's own."""
    logging.basicConfig(level=loglevel.upper(), format="[%(asctime)s] [%(levelname)s] %(name)s: %(message)s")
    framework = (os.environ.get("XPBANK_FRAMEWORK_LOGLEVEL") or DEFAULTS["XPBANK_FRAMEWORK_LOGLEVEL"]).upper()
    for name in ("aiokafka", "aiohttp"):
        logging.getLogger(name).setLevel(framework)
    if loop == "uvloop":
        uvloop.run(serve(settings))
    else:
        asyncio.run(serve(settings))
