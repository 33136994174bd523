"""`xpbank projector`: the projector on its own, with its /healthz and /metrics on
XPBANK_PROJECTOR_PORT, until SIGTERM or SIGINT. Ready (200) while the broker and Redis
answer and the read models are complete; 503 with the reason otherwise."""

from __future__ import annotations

import asyncio
import logging

from xpbank.config import Settings
from xpbank.entrypoints.signals import stop_on_signals
from xpbank.kafka.background import BrokerProbe, keep_running, throttle_library_logs
from xpbank.read.api import projector_gauges, projector_health, render_metrics
from xpbank.read.projector import Projector
from xpbank.read.status_server import serve_status

log = logging.getLogger("xpbank.projector")


def readiness(projector: Projector, probe: BrokerProbe) -> tuple[int, dict]:
    """Ready while the broker and Redis answer and the read models are complete."""
    read_side = projector_health(projector)
    ready = bool(probe.up) and bool(projector.health.redis_up) and projector.health.ready
    body = {"ready": ready, "brokerReachable": probe.up, **read_side}
    if probe.problem:
        body["brokerProblem"] = probe.problem
    return (200 if ready else 503), body


def metrics_text(projector: Projector, probe: BrokerProbe) -> str:
    gauges, lag = projector_gauges(projector)
    return render_metrics(projector.metrics, None, {}, projector_lag=lag,
                          gauges={"xpbank_broker_up": None if probe.up is None else int(probe.up), **gauges})


def main_projector(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    for name in ("aiokafka", "kafka"):
        logging.getLogger(name).setLevel(logging.WARNING)
    throttle_library_logs()

    async def run() -> None:
        projector, probe = Projector(settings), BrokerProbe(settings)

        async def health() -> tuple[int, dict]:
            return readiness(projector, probe)

        async def metrics() -> str:
            return metrics_text(projector, probe)

        runner = await serve_status(settings, settings.projector_port, health, metrics)
        tasks = [asyncio.create_task(projector.run(), name="projector"),
                 asyncio.create_task(keep_running("broker check", probe.run, projector.metrics), name="probe")]
        stop = stop_on_signals()
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await runner.cleanup()
            log.info("projector stopped")

    asyncio.run(run())
