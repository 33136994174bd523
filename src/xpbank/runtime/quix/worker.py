"""Running the Quix engine: `xpbank worker` and `xpbank replay --generation N` with
XPBANK_ENGINE=quix. Quix owns the main thread; the curriculum view, the projector and the
API run on a sidecar thread."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import Counter

from xpbank.config import Settings
from xpbank.kafka.lag import PartitionLagProbe
from xpbank.read.api import health, render_metrics
from xpbank.read.server import Host, Watch
from xpbank.read.ui.views import engine_status
from xpbank.runtime.curriculum_view import CurriculumView
from xpbank.runtime.quix.app import QuixEngine
from xpbank.runtime.sidecar import Sidecar
from xpbank.runtime.topology import RETENTION_WARNING_SECONDS, input_topics, prepare_topics

log = logging.getLogger("xpbank")
QUIET_LOGGERS = ("quixstreams", "aiokafka", "aiohttp", "kafka")


def run_worker(settings: Settings, *, until_caught_up: bool = False, loglevel: str = "INFO") -> None:
    logging.basicConfig(level=loglevel.upper(), format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s")
    framework = logging.getLevelName(settings_level(loglevel))
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(framework)
    risky = prepare_topics(settings)
    metrics: Counter = Counter()
    curriculum = CurriculumView(settings)
    engine = QuixEngine(settings, curriculum, metrics)
    probe = PartitionLagProbe(settings, engine.group, input_topics(settings))

    async def readiness() -> tuple[int, dict]:
        return health(engine.ever_assigned and not engine.recovering, engine.rebalancing, curriculum.ready_now())

    async def metrics_text() -> str:
        try:
            lag = await asyncio.wait_for(probe.lag(), 5)
        except Exception:  # noqa: BLE001 - the rest of the metrics still count
            lag = None
        return render_metrics(metrics, lag, {}, engine.latency, ready=(await readiness())[0] == 200)

    async def status() -> dict:
        return engine_status("quix", settings.instance_id, engine.ever_assigned and not engine.recovering,
                             engine.rebalancing, curriculum.ready_now(), metrics)

    host = Host(readiness, metrics_text, status=status, watch=Watch(engine.group, tuple(input_topics(settings))))
    sidecar = Sidecar(settings, curriculum, None if until_caught_up else host, metrics,
                      projector=settings.projector and not until_caught_up)
    sidecar.start()
    log.info("worker ready to consume group=%s generation=%d partitions=%d engine=quix guarantee=%s web=:%d",
             engine.group, settings.rules.generation, settings.partitions, settings.processing_guarantee,
             settings.web_port)
    if not curriculum.loaded.wait(120):
        sidecar.stop()
        raise SystemExit("xpbank: the curriculum topic was not read to its end within 120 s")
    engine.context.dataframe_registry.register_periodic_task(Periodic(engine, risky, until_caught_up, settings))
    try:
        engine.app.run()  # until SIGTERM/SIGINT (or caught up): Quix commits once more as it stops
    finally:
        sidecar.stop()


def settings_level(loglevel: str) -> int:
    import os

    return logging.getLevelName((os.environ.get("XPBANK_FRAMEWORK_LOGLEVEL") or "WARNING").upper())


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
            for drift in self.risky:
                log.warning("input topic deletes records (XPBANK_ALLOW_FINITE_RETENTION=1): %s", drift)
        if not self.until_caught_up or now - self.last_check < 1.0:
            return
        self.last_check = now
        processed = sum(v for k, v in engine.metrics.items() if k.startswith("records_in:"))
        generation = self.settings.rules.generation
        print(f"\rreplay generation {generation}: {processed:,} records processed ({now - self.started:.0f}s)",
              end="", file=sys.stderr, flush=True)
        self.calm = self.calm + 1 if engine.caught_up() else 0
        if self.calm >= 2:
            print(f"\nreplay generation {generation}: caught up", file=sys.stderr, flush=True)
            engine.app.stop()
