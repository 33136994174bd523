"""Background work that rides out an outage: a broker or Redis away makes a task wait,
retry and report, never end the process (Kubernetes would otherwise restart pods in a
loop through every broker maintenance).

- `keep_running`: a long-running task started again after it fails, with backoff.
- `guarded`: a periodic timer body whose failure is reported; it runs again next period.
- `BrokerProbe`: whether the broker answers now, for /healthz and /metrics.
- `ThrottledLogs`: a client library's error repeated on every reconnect attempt (aiokafka
  logs "Unable connect to node" many times a second while a broker is down) is let
  through once per window, with the count of the ones held back.

Failures are counted as `background_retries:{task}` (`xpbank_background_retries_total`)."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable

from xpbank.config import Settings

log = logging.getLogger("xpbank")
REPORT_EVERY = 60.0  # seconds between two reports of a task that keeps failing


class _Reports:
    """When each task's failure was last logged: the first failure of an outage is said
    at once, later ones once a minute."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    def say(self, task: str, exc: BaseException, retries: Counter | None, wait: float | None) -> None:
        if retries is not None:
            retries[f"background_retries:{task}"] += 1
        now = time.monotonic()
        if now - self.last.get(task, -REPORT_EVERY) < REPORT_EVERY:
            return
        self.last[task] = now
        then = f"; trying again in {wait:.0f} s" if wait is not None else "; trying again next time"
        log.warning("%s failed (%s: %s)%s", task, type(exc).__name__, str(exc)[:300] or "-", then)


REPORTS = _Reports()


async def keep_running(task: str, body: Callable[[], Awaitable[None]], retries: Counter | None = None, *,
                       first_wait: float = 1.0, longest_wait: float = 30.0) -> None:
    """Run `body` until it returns; when it raises, report, wait (doubling from
    `first_wait` up to `longest_wait`, back to `first_wait` after a long good run) and run
    it again. Cancellation goes through."""
    wait = first_wait
    while True:
        started = time.monotonic()
        try:
            await body()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure: the process stays up
            if time.monotonic() - started > longest_wait:
                wait = first_wait
            REPORTS.say(task, exc, retries, wait)
            await asyncio.sleep(wait)
            wait = min(wait * 2, longest_wait)


def guarded(task: str, retries: Counter | None = None):
    """A periodic body (a Faust timer, a loop's turn) that reports its failure instead of
    raising it: the timer simply runs again at its next period."""

    def wrap(fn: Callable[..., Awaitable]):
        @functools.wraps(fn)
        async def run(*args, **kwargs):
            try:
                return await fn(*args, **kwargs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reported, counted, tried again next period
                REPORTS.say(task, exc, retries, None)
                return None
        return run
    return wrap


class BrokerProbe:
    """Asks the broker for its metadata every `every` seconds. `up` is None until the
    first answer; transitions are logged once each way."""

    def __init__(self, settings: Settings, every: float = 2.0, timeout: float = 3.0) -> None:
        self.settings, self.every, self.timeout = settings, every, timeout
        self.up: bool | None = None
        self.problem = ""
        self.down_since: float | None = None

    async def check(self) -> bool:
        from xpbank.kafka.admin import Admin

        try:
            await Admin(self.settings, timeout=self.timeout).metadata()
        except Exception as exc:  # noqa: BLE001 - any failure means "not now"
            self._down(f"{type(exc).__name__}: {exc}"[:300])
            return False
        self._up()
        return True

    def _down(self, problem: str) -> None:
        self.problem = problem
        if self.up is not False:
            self.down_since = time.monotonic()
            log.warning("the broker at %s does not answer (%s): waiting for it", self.settings.broker, problem)
        self.up = False

    def _up(self) -> None:
        if self.up is False and self.down_since is not None:
            log.warning("the broker at %s answers again after %.0f s", self.settings.broker,
                        time.monotonic() - self.down_since)
        self.up, self.problem, self.down_since = True, "", None

    async def run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self.every)


class ThrottledLogs(logging.Filter):
    """Lets a library's warning or error through once per `window` seconds per message
    template; the next one let through says how many were held back."""

    LIBRARIES = ("aiokafka", "kafka", "faust", "mode", "quixstreams")

    def __init__(self, window: float = 30.0) -> None:
        super().__init__()
        self.window = window
        self.seen: dict[tuple[str, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(self.LIBRARIES):
            return True
        key = (record.name, record.msg)
        now = time.monotonic()
        last, held = self.seen.get(key, (-self.window, 0))
        if now - last < self.window:
            self.seen[key] = (last, held + 1)
            return False
        self.seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {self.window:.0f} s)"
        return True


def throttle_library_logs(window: float = 30.0) -> None:
    """Install the throttle on every handler of the root logger (once), and aiokafka's
    backoff after failed metadata updates (`aiokafka_fixes`): a process waiting for its
    broker neither floods its log nor spins."""
    from xpbank.kafka.aiokafka_fixes import install_aiokafka_fixes

    install_aiokafka_fixes()
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ThrottledLogs) for f in handler.filters):
            handler.addFilter(ThrottledLogs(window))


def quiet_libraries(settings: Settings, names: tuple[str, ...]) -> None:
    """The client libraries' loggers at XPBANK_FRAMEWORK_LOGLEVEL, their repeated errors
    throttled (`throttle_library_logs`). Call once logging is set up."""
    for name in names:
        logging.getLogger(name).setLevel(settings.framework_loglevel)
    throttle_library_logs()
