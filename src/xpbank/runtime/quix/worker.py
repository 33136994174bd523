"""The Quix engine as the worker's runner sees it (runtime/engines.py: EngineRun). Quix
owns the main thread; the runner's sidecar thread runs the curriculum view, the broker
probe, the projector and the API beside it."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable

from xpbank.config import Settings
from xpbank.kafka.background import BrokerProbe
from xpbank.observe.latency import Histogram
from xpbank.runtime.curriculum_view import CurriculumView
from xpbank.runtime.quix.app import QuixEngine
from xpbank.runtime.stop_grace import start_grace_on_stop_signals

log = logging.getLogger("xpbank")
CAUGHT_UP_EVERY = 1.0  # seconds between caught-up checks (in Quix's loop, where its consumer lives)


class QuixWorker:
    name = "quix"
    quiet_loggers = ("quixstreams", "aiokafka", "aiohttp", "kafka")
    runs_background = False

    def __init__(self, settings: Settings, curriculum: CurriculumView, probe: BrokerProbe, metrics: Counter,
                 latency: Histogram) -> None:
        self.settings, self.curriculum, self.metrics, self.latency = settings, curriculum, metrics, latency
        self.running = Running(settings, curriculum, metrics, latency)
        self.last_caught_up = False  # as the last check in Quix's loop saw it
        self.last_check = 0.0

    @property
    def recovered(self) -> bool:
        engine = self.running.engine
        return engine is not None and engine.ever_assigned and not engine.recovering

    @property
    def rebalancing(self) -> bool:
        engine = self.running.engine
        return engine is None or engine.rebalancing

    def table_sizes(self) -> dict[str, int]:
        return {}

    async def caught_up(self) -> bool:
        return self.last_caught_up

    def run(self, loglevel: str, started: Callable[[], None]) -> None:
        logging.basicConfig(level=loglevel.upper(), format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s")
        started()
        start_grace_on_stop_signals()  # Quix's main thread may sit in librdkafka's flush()
        while not self.curriculum.loaded.wait(5):  # a broker away at the start is waited for
            log.info("waiting for the curriculum topic to be read to its end")
        self.running.run(self.check_caught_up)

    def stop(self) -> None:
        self.running.stopping.set()
        engine = self.running.engine
        if engine is not None:
            engine.app.stop()

    def check_caught_up(self, engine: QuixEngine) -> None:
        """On every turn of Quix's loop (its consumer is not asked from another thread)."""
        now = time.monotonic()
        if now - self.last_check < CAUGHT_UP_EVERY:
            return
        self.last_check = now
        try:
            self.last_caught_up = engine.caught_up()
        except Exception as exc:  # noqa: BLE001 - the broker away: not caught up, ask again next time
            log.debug("caught-up check failed: %s", exc)
            self.last_caught_up = False


class Running:
    """The Quix engine, started again in this process when it fails: librdkafka makes some
    errors fatal to a client (a static member fenced after a broker restart: "Commit
    failed: Local: Fatal error"), and only a new consumer gets past them. Its state is
    the committed one, so records since the last checkpoint are processed again."""

    def __init__(self, settings: Settings, curriculum: CurriculumView, metrics: Counter, latency: Histogram) -> None:
        self.settings, self.curriculum, self.metrics = settings, curriculum, metrics
        self.engine: QuixEngine | None = None
        self.stopping = threading.Event()
        self.latency = latency  # record timestamp -> outputs published, across engine restarts

    def run(self, on_loop: Callable[[QuixEngine], None]) -> None:
        """`on_loop(engine)` runs on every turn of Quix's loop."""
        wait = 1.0
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                self.engine = engine = QuixEngine(self.settings, self.curriculum, self.metrics,  # asks the broker
                                                  self.latency)
                engine.context.dataframe_registry.register_periodic_task(lambda: on_loop(engine))
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
