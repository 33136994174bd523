"""An asyncio loop on a thread of its own, for an engine that owns the main thread (Quix
Streams installs its signal handlers there): the curriculum view, the projector and the
HTTP API run on it, as tasks of the Faust worker's own loop do there."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter

from xpbank.config import Settings
from xpbank.kafka.background import BrokerProbe, keep_running
from xpbank.read.projector import Projector
from xpbank.read.server import Host, serve
from xpbank.runtime.curriculum_view import CurriculumView

log = logging.getLogger("xpbank")


class Sidecar:
    def __init__(self, settings: Settings, curriculum: CurriculumView, host: Host | None, metrics: Counter,
                 projector: Projector | None, probe: BrokerProbe) -> None:
        self.settings, self.curriculum, self.host, self.metrics = settings, curriculum, host, metrics
        self.projector, self.probe = projector, probe
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="xpbank-sidecar", daemon=True)
        self._stop: asyncio.Event | None = None

    def start(self, timeout: float = 30) -> None:
        """Start the thread; returns once the API listens (raises what stopped it)."""
        self.thread.start()
        if not self.started.wait(timeout) or self.failure:
            raise RuntimeError(f"the sidecar did not start: {self.failure!r}")

    def stop(self, timeout: float = 15) -> None:
        if self._stop is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(timeout)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to the engine's thread
            self.failure = exc
            self.started.set()
            log.exception("the sidecar stopped")

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        tasks = [asyncio.create_task(self.curriculum.follow(self.metrics), name="curriculum"),
                 asyncio.create_task(keep_running("broker check", self.probe.run, self.metrics), name="broker check")]
        if self.projector is not None:
            tasks.append(asyncio.create_task(self.projector.run(), name="projector"))
        runner = await serve(self.settings, self.host) if self.host is not None else None
        self.started.set()
        try:
            stopping = asyncio.create_task(self._stop.wait())
            done, _ = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopping}:
                task.result()  # a task that ended on its own: raise what ended it
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if runner is not None:
                await runner.cleanup()
