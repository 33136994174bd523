"""The Faust worker's side of the HTTP API: what it knows beyond Redis (readiness, its
counters, lag and table sizes), handed to the API server of `read/server.py`, which the
worker runs as one of its tasks (Faust's own web server stays off)."""

from __future__ import annotations

import asyncio
import logging

import faust

from xpbank.kafka.lag import PartitionLagProbe
from xpbank.read.api import health, projector_gauges, projector_health, render_metrics
from xpbank.read.server import Host, Watch, serve
from xpbank.read.ui.views import engine_status

log = logging.getLogger("xpbank.web")


def add_api(wiring, tables: dict[str, faust.Table], curriculum_view, settings, lag_topics) -> None:
    """Serve the API from the worker `wiring.app`. `lag_topics`: the group's input topics."""
    app = wiring.app
    lag_probe = PartitionLagProbe(settings, app.conf.id, lag_topics)

    async def readiness() -> tuple[int, dict]:
        status, body = health(wiring.recovered, bool(app.rebalancing),
                              curriculum_view.ready.is_set(), wiring.probe.up, wiring.probe.problem)
        return status, body | projector_health(wiring.projector)

    async def metrics() -> str:
        try:
            lag = await asyncio.wait_for(lag_probe.lag(), 5)
        except Exception as exc:  # noqa: BLE001 - the rest of the metrics still count
            log.debug("consumer lag unavailable: %s", exc)
            lag = None
        gauges, projector_lag = projector_gauges(wiring.projector)
        broker = wiring.probe
        return render_metrics(wiring.metrics, lag, {name: _size(table) for name, table in tables.items()}, wiring.latency,
                              ready=(await readiness())[0] == 200, projector_lag=projector_lag,
                              gauges={"xpbank_broker_up": None if broker.up is None else int(broker.up), **gauges})

    async def status() -> dict:
        return engine_status("faust", settings.instance_id, wiring.recovered,
                             bool(app.rebalancing), curriculum_view.ready.is_set(), wiring.metrics)

    host = Host(readiness, metrics, status=status, watch=Watch(app.conf.id, tuple(lag_topics)))

    @app.task
    async def api() -> None:
        runner = await serve(settings, host)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


def _size(table: faust.Table) -> int:
    try:
        return len(table)
    except Exception:  # noqa: BLE001 - a store mid-rebalance
        return 0
