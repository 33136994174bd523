"""Running the Quix engine: `xpbank worker` and `xpbank replay --generation N` with
XPBANK_ENGINE=quix. Quix owns the main thread; the curriculum view, the projector and the
API run on a sidecar thread."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from collections import Counter

from xpbank.config import Settings
from xpbank.kafka.background import BrokerProbe, quiet_libraries
from xpbank.kafka.lag import PartitionLagProbe
from xpbank.read.api import health, projector_gauges, projector_health, render_metrics
from xpbank.read.latency import Histogram
from xpbank.read.projector import Projector
from xpbank.read.server import Host, Watch
from xpbank.read.ui.views import engine_status
from xpbank.runtime.curriculum_view import CurriculumView
from xpbank.runtime.quix.app import QuixEngine
from xpbank.runtime.sidecar import Sidecar
from xpbank.runtime.broker_wait import wait_for_broker
from xpbank.runtime.stop_grace import start_grace_on_stop_signals
from xpbank.runtime.topology import (
    RETENTION_WARNING_SECONDS, app_id, input_topics, prepare_topics, warn_finite_retention,
)

log = logging.getLogger("xpbank")
QUIET_LOGGERS = ("quixstreams", "aiokafka", "aiohttp", "kafka")


def run_worker(settings: Settings, *, until_caught_up: bool = False, loglevel: str = "INFO") -> None:
    logging.basicConfig(level=loglevel.upper(), format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s")
    quiet_libraries(settings, QUIET_LOGGERS)
    wait_for_broker(settings, None if until_caught_up else settings.web_port)
    start_grace_on_stop_signals()  # Quix's main thread may sit in librdkafka's flush()
    risky = prepare_topics(settings)
    metrics: Counter = Counter()
    curriculum = CurriculumView(settings)
    probe = BrokerProbe(settings)
    running = Running(settings, curriculum, metrics)
    projector = Projector(settings, metrics) if settings.projector and not until_caught_up else None
    lag_probe = PartitionLagProbe(settings, running.group, input_topics(settings))

    async def readiness() -> tuple[int, dict]:
        engine = running.engine
        status, body = health(engine is not None and engine.ever_assigned and not engine.recovering,
                              engine is None or engine.rebalancing, curriculum.ready_now(), probe.up, probe.problem)
        return status, body | projector_health(projector)

    async def metrics_text() -> str:
        try:
            lag = await asyncio.wait_for(lag_probe.lag(), 5)
        except Exception:  # noqa: BLE001 - the rest of the metrics still count
            lag = None
        gauges, projector_lag = projector_gauges(projector)
        return render_metrics(metrics, lag, {}, running.latency, ready=(await readiness())[0] == 200,
                              projector_lag=projector_lag,
                              gauges={"xpbank_broker_up": None if probe.up is None else int(probe.up), **gauges})

    async def status() -> dict:
        engine = running.engine
        return engine_status("quix", settings.instance_id, engine is not None and engine.ever_assigned
                             and not engine.recovering, engine is None or engine.rebalancing, curriculum.ready_now(),
                             metrics)

    host = Host(readiness, metrics_text, status=status, watch=Watch(running.group, tuple(input_topics(settings))))
    sidecar = Sidecar(settings, curriculum, None if until_caught_up else host, metrics, projector=projector,
                      probe=probe)
    sidecar.start()
    log.info("worker ready to consume group=%s generation=%d partitions=%d engine=quix guarantee=%s web=:%d",
             running.group, settings.rules.generation, settings.partitions, settings.processing_guarantee,
             settings.web_port)
    try:
        while not curriculum.loaded.wait(5):  # a broker away at the start is waited for
            log.info("waiting for the curriculum topic to be read to its end")
        running.run(lambda engine: Periodic(engine, risky, until_caught_up, settings))
    finally:
        sidecar.stop()


class Running:
    """The Quix engine, started again in this process when it fails: librdkafka makes some
    errors fatal to a client (a static member fenced after a broker restart: "Commit
    failed: Local: Fatal error"), and only a new consumer gets past them. Its state is
    the committed one, so records since the last checkpoint are processed again."""

    def __init__(self, settings: Settings, curriculum: CurriculumView, metrics: Counter) -> None:
        self.settings, self.curriculum, self.metrics = settings, curriculum, metrics
        self.group = app_id(settings)
        self.engine: QuixEngine | None = None
        self.stopping = threading.Event()
        self.latency = Histogram()  # record timestamp -> outputs published, across engine restarts

    def run(self, periodic) -> None:
        wait = 1.0
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                self.engine = engine = QuixEngine(self.settings, self.curriculum, self.metrics)  # asks the broker
                engine.latency = self.latency
                engine.context.dataframe_registry.register_periodic_task(periodic(engine))
                engine.app.run()  # until SIGTERM/SIGINT (or caught up): Quix commits once more as it stops
                return
            except Exception as exc:  # noqa: BLE001 - the worker stays up; the engine starts again
                self.metrics["engine_restarts"] += 1
                self.engine = None
                wait = 1.0 if time.monotonic() - started > 60 else min(wait * 2, 30.0)
                log.warning("the Quix engine stopped (%s: %s); starting it again in %.0f s", type(exc).__name__,
                            str(exc)[:300], wait)
            self._sleep(wait)

    def _sleep(self, seconds: float) -> None:
        """Wait, stopping on SIGTERM/SIGINT (Quix's own handlers are gone with its run)."""
        def stop(*_) -> None:
            self.stopping.set()
        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.stopping.wait(seconds)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


class Periodic:
    """Runs on every turn of Quix's loop: readiness log, hourly retention warnings, and
    for a replay the stop once caught up (two checks in a row, a second apart)."""

    def __init__(self, engine: QuixEngine, risky: list[str], until_caught_up: bool, settings: Settings) -> None:
        self.engine, self.risky, self.until_caught_up, self.settings = engine, risky, until_caught_up, settings
        self.announced = False
        self.last_check = self.last_warning = time.monotonic()
        self.calm = 0
        self.started = time.monotonic()

    def __call__(self) -> None:
        engine, now = self.engine, time.monotonic()
        if not self.announced and engine.ready():
            self.announced = True
            log.info("Worker ready: partitions assigned, state recovered, curriculum loaded")
        if self.risky and now - self.last_warning >= RETENTION_WARNING_SECONDS:
            self.last_warning = now
            warn_finite_retention(self.risky)
        if not self.until_caught_up or now - self.last_check < 1.0:
            return
        self.last_check = now
        processed = sum(v for k, v in engine.metrics.items() if k.startswith("records_in:"))
        generation = self.settings.rules.generation
        print(f"\rreplay generation {generation}: {processed:,} records processed ({now - self.started:.0f}s)",
              end="", file=sys.stderr, flush=True)
        try:
            caught_up = engine.caught_up()
        except Exception as exc:  # noqa: BLE001 - the broker away: not caught up, ask again next time
            log.debug("caught-up check failed: %s", exc)
            caught_up = False
        self.calm = self.calm + 1 if caught_up else 0
        if self.calm >= 2:
            print(f"\nreplay generation {generation}: caught up", file=sys.stderr, flush=True)
            engine.app.stop()
