"""An asyncio loop on a thread of its own beside the engine, which owns the main thread
(both install their signal handlers there): the HTTP API, the projector and the
worker's chores run on it, and for the Quix engine, whose loop is not asyncio, the
curriculum view and the broker probe too."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable

from xpbank.config import Settings
from xpbank.read.server import Host, serve

log = logging.getLogger("xpbank")


class Sidecar:
    def __init__(self, settings: Settings, host: Host | None,
                 tasks: dict[str, Callable[[], Awaitable[None]]]) -> None:
        """`host`: the API to serve (None: none); `tasks`: name -> what runs till the stop."""
        self.settings, self.host, self.tasks = settings, host, tasks
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
        tasks = [asyncio.create_task(run(), name=name) for name, run in self.tasks.items()]
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
