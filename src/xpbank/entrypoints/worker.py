"""`xpbank worker` and `xpbank replay --generation N` on either engine: the one runner.

The engine (runtime/engines.py) owns the main thread and the records; the runner owns
the rest, the same for both: waiting for the broker, preparing the topics (and repeating
the retention warning), the framework's log levels, readiness, hosting the API and the
projector (on a sidecar thread), and for a replay the stop once caught up."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from collections import Counter

from xpbank.config import Settings
from xpbank.entrypoints.broker_wait import wait_for_broker
from xpbank.entrypoints.sidecar import Sidecar
from xpbank.kafka.background import BrokerProbe, keep_running, quiet_libraries
from xpbank.kafka.lag import PartitionLagProbe
from xpbank.observe.latency import Histogram
from xpbank.read.api import health, projector_gauges, projector_health, render_metrics
from xpbank.read.projector import Projector
from xpbank.read.server import Host, Watch
from xpbank.read.ui.views import engine_status
from xpbank.runtime.curriculum_view import CurriculumView
from xpbank.runtime.engines import EngineRun, engine_of
from xpbank.runtime.topology import (
    RETENTION_WARNING_SECONDS, app_id, input_topics, prepare_topics, warn_finite_retention,
)

log = logging.getLogger("xpbank")
CALM_CHECKS = 2  # a replay stops after this many caught-up checks in a row, a second apart


def run_worker(settings: Settings, *, until_caught_up: bool = False, loglevel: str = "INFO") -> None:
    """Run a worker in this process. With `until_caught_up` (replay), stop once every
    input record present has been processed and its outputs sent."""
    wait_for_broker(settings, None if until_caught_up else settings.web_port)
    risky = prepare_topics(settings)
    metrics, curriculum, probe = Counter(), CurriculumView(settings), BrokerProbe(settings)
    engine = engine_of(settings).build(settings, curriculum, probe, metrics, Histogram())
    projector = Projector(settings, metrics) if settings.projector and not until_caught_up else None
    chores = Chores(settings, engine, risky, until_caught_up)
    tasks = {"chores": chores.run}
    if projector is not None:
        tasks["projector"] = projector.run
    if not engine.runs_background:  # else they run in the engine's own loop
        tasks["curriculum"] = lambda: curriculum.follow(metrics)
        tasks["broker check"] = lambda: keep_running("broker check", probe.run, metrics)
    host = None if until_caught_up else worker_host(settings, engine, curriculum, probe, projector)
    sidecar = Sidecar(settings, host, tasks)

    def started() -> None:  # in the running engine, after its framework set up logging
        quiet_libraries(settings, engine.quiet_loggers)
        log.info("worker ready to consume group=%s generation=%d partitions=%d engine=%s guarantee=%s web=:%d",
                 app_id(settings), settings.rules.generation, settings.partitions, engine.name,
                 settings.processing_guarantee, settings.web_port)

    sidecar.start()
    try:
        engine.run(loglevel, started)
    finally:
        sidecar.stop()


def ready(engine: EngineRun, curriculum: CurriculumView) -> bool:
    return engine.recovered and not engine.rebalancing and curriculum.ready_now()


def worker_host(settings: Settings, engine: EngineRun, curriculum: CurriculumView, probe: BrokerProbe,
                projector: Projector | None) -> Host:
    """The API a worker serves: readiness, metrics and status beside the read models'."""
    lag_probe = PartitionLagProbe(settings, app_id(settings), input_topics(settings))

    async def readiness() -> tuple[int, dict]:
        status, body = health(engine.recovered, engine.rebalancing, curriculum.ready_now(), probe.up, probe.problem)
        return status, body | projector_health(projector)

    async def metrics_text() -> str:
        try:
            lag = await asyncio.wait_for(lag_probe.lag(), 5)
        except Exception as exc:  # noqa: BLE001 - the rest of the metrics still count
            log.debug("consumer lag unavailable: %s", exc)
            lag = None
        gauges, projector_lag = projector_gauges(projector)
        return render_metrics(dict(engine.metrics), lag, engine.table_sizes(), engine.latency,
                              ready=(await readiness())[0] == 200, projector_lag=projector_lag,
                              gauges={"xpbank_broker_up": None if probe.up is None else int(probe.up), **gauges})

    async def status() -> dict:
        return engine_status(engine.name, settings.instance_id, engine.recovered, engine.rebalancing,
                             curriculum.ready_now(), dict(engine.metrics))

    return Host(readiness, metrics_text, status=status, watch=Watch(app_id(settings), tuple(input_topics(settings))))


class Chores:
    """Beside the engine: the readiness log (the benchmarks time recovery by it), and once
    a second the hourly retention warnings and, for a replay, its progress and its stop
    once caught up (CALM_CHECKS in a row)."""

    def __init__(self, settings: Settings, engine: EngineRun, risky: list[str], until_caught_up: bool) -> None:
        self.settings, self.engine, self.risky, self.until_caught_up = settings, engine, risky, until_caught_up
        self.announced = False
        self.calm = 0
        self.started = self.last_warning = self.last_check = time.monotonic()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            engine = self.engine
            if not self.announced and engine.recovered and not engine.rebalancing:
                self.announced = True
                # the start-up heap (modules, the app, the restored state) leaves the
                # collector's sight: a full collection scanned it in 44-114 ms, a pause in the
                # latency's tail (docs/benchmarks.md); it now scans what was made since
                gc.freeze()
                log.info("Worker ready: partitions assigned, state recovered")
            if time.monotonic() - self.last_check < 1.0:
                continue
            self.last_check = time.monotonic()
            try:
                await self.check()
            except Exception as exc:  # noqa: BLE001 - the broker away: not caught up, ask again next time
                log.debug("worker chores: %s", exc)
                self.calm = 0

    async def check(self) -> None:
        engine, now = self.engine, time.monotonic()
        if self.risky and now - self.last_warning >= RETENTION_WARNING_SECONDS:
            self.last_warning = now
            warn_finite_retention(self.risky)
        if not self.until_caught_up:
            return
        generation = self.settings.rules.generation
        processed = sum(v for k, v in dict(engine.metrics).items() if k.startswith("records_in:"))
        print(f"\rreplay generation {generation}: {processed:,} records processed ({now - self.started:.0f}s)",
              end="", file=sys.stderr, flush=True)
        self.calm = self.calm + 1 if await engine.caught_up() else 0
        if self.calm >= CALM_CHECKS:
            print(f"\nreplay generation {generation}: caught up", file=sys.stderr, flush=True)
            engine.stop()
            self.calm = -10**9  # asked once
