"""`xpbank api`: the HTTP API alone, on the read models in Redis (read/server.py)."""

from __future__ import annotations

import asyncio
import logging

from xpbank.config import Settings
from xpbank.entrypoints.signals import stop_on_signals
from xpbank.kafka.background import throttle_library_logs
from xpbank.read.api import render_metrics
from xpbank.read.read_models import ReadModels
from xpbank.read.server import Host, Watch, serve


def main_api(settings: Settings, watch: Watch | None = None) -> None:
    """`xpbank api`: the API alone (any number of them, behind a load balancer), ready
    while Redis answers; stops on SIGTERM or SIGINT. `watch`: the worker group whose lag
    and members the web page shows."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    throttle_library_logs()

    async def run() -> None:
        models = ReadModels.connect(settings)
        seen: dict[str, bool | None] = {"redis": None, "ready": None}

        async def readiness() -> tuple[int, dict]:
            """Ready while Redis answers and holds complete read models."""
            try:
                status = await models.status()
            except Exception as exc:  # noqa: BLE001 - Redis away: not ready
                seen.update(redis=False, ready=False)
                return 503, {"ready": False, "redisReachable": False, "readModels": "unknown",
                             "problem": f"Redis does not answer: {type(exc).__name__}"}
            seen.update(redis=True, ready=status.ready)
            body = {"ready": status.ready, "redisReachable": True,
                    "readModels": status.name}
            if not status.ready:
                body["problem"] = status.problem()
            return (200 if status.ready else 503), body

        async def api_metrics() -> str:
            await readiness()
            return render_metrics({}, None, {}, gauges={
                "xpbank_redis_up": None if seen["redis"] is None else int(seen["redis"]),
                "xpbank_read_models_ready": None if seen["ready"] is None else int(seen["ready"])})

        runner = await serve(settings, Host(readiness, api_metrics, watch=watch))
        stop = stop_on_signals()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
            await models.close()

    asyncio.run(run())
