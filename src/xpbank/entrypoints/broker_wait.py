"""A worker started while its broker is away waits for it instead of exiting: a pod
restarted during a broker maintenance must not crash-loop (docs/operations.md, Outages).

Meanwhile the worker's web port answers `/healthz` 503 with the cause (readiness fails,
a liveness probe on the port passes) and `/metrics` `xpbank_broker_up 0`; the log says
what it waits for every WAIT_LOG_SECONDS. A broker that answers but refuses us
(credentials, certificate, protocol) is a configuration error: that exits at once, naming
the cause."""

from __future__ import annotations

import asyncio
import logging
import time

from xpbank.config import Settings
from xpbank.kafka.admin import Admin, BrokerAway
from xpbank.read.status_server import serve_status

log = logging.getLogger("xpbank")
WAIT_LOG_SECONDS = 30.0


def wait_for_broker(settings: Settings, port: int | None) -> None:
    """Return once the broker answers; serve the waiting status on `port` (None: none)."""
    root = logging.getLogger()
    handler = None
    if not root.handlers:  # Faust sets up logging only when it starts: until then, this
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"))
        root.addHandler(handler)
        log.setLevel(logging.INFO)
    try:
        asyncio.run(_wait(settings, port))
    finally:
        if handler is not None:
            root.removeHandler(handler)
            log.setLevel(logging.NOTSET)


async def _wait(settings: Settings, port: int | None) -> None:
    admin = Admin(settings)
    try:
        await admin.metadata()
        return
    except BrokerAway as away:
        cause = str(away)
    started, logged = time.monotonic(), time.monotonic()
    log.warning("waiting for the broker (the worker starts once it answers): %s", cause)

    async def health() -> tuple[int, dict]:
        return 503, {"ready": False, "brokerReachable": False, "brokerProblem": cause,
                     "waitingForBrokerSeconds": round(time.monotonic() - started)}

    async def metrics() -> str:
        return "# TYPE xpbank_broker_up gauge\nxpbank_broker_up 0\n"

    runner = await serve_status(settings, port, health, metrics) if port else None
    try:
        while True:
            try:
                await admin.metadata()
                break
            except BrokerAway as away:
                cause = str(away)
                if time.monotonic() - logged >= WAIT_LOG_SECONDS:
                    logged = time.monotonic()
                    log.warning("still waiting for the broker after %.0f s: %s", logged - started, cause)
    finally:
        if runner is not None:
            await runner.cleanup()
    log.info("the broker answers after %.0f s of waiting; starting", time.monotonic() - started)
