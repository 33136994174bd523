"""Running the Faust engine: `xpbank worker` and `xpbank replay --generation N`."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time

from xpbank.config import Settings
from xpbank.kafka.admin import group_lag
from xpbank.kafka.background import guarded, quiet_libraries
from xpbank.runtime.stop_grace import exit_if_not_stopped_within
from xpbank.runtime.faust import internals
from xpbank.runtime.faust.app import create_app
from xpbank.runtime.broker_wait import wait_for_broker
from xpbank.runtime.topology import (
    RETENTION_WARNING_SECONDS, app_id, input_topics, prepare_topics, warn_finite_retention,
)

QUIET_LOGGERS = ("faust", "mode", "aiokafka", "aiohttp", "kafka")
log = logging.getLogger("xpbank")


def run_worker(settings: Settings, *, until_caught_up: bool = False, loglevel: str = "INFO") -> None:
    """Run a worker in this process. With `until_caught_up` (replay), stop once every
    input record present has been processed and committed."""
    BoundedStopWorker = internals.worker_class_stopping_within(exit_if_not_stopped_within)
    wait_for_broker(settings, None if until_caught_up else settings.web_port)
    risky = prepare_topics(settings)
    wiring = create_app(settings, web=not until_caught_up)
    os.makedirs(wiring.app.conf.datadir, exist_ok=True)
    app = wiring.app
    group = app_id(settings)

    if risky:
        @app.timer(RETENTION_WARNING_SECONDS, on_leader=False)
        @guarded("retention warning", wiring.metrics)
        async def warn_hourly() -> None:
            warn_finite_retention(risky)

    @app.task
    async def quiet_framework_logs() -> None:
        quiet_libraries(settings, QUIET_LOGGERS)
        logging.getLogger("xpbank").info(
            "worker ready to consume group=%s generation=%d partitions=%d store=%s web=:%d",
            group, settings.rules.generation, settings.partitions, settings.store, settings.web_port,
        )

    if until_caught_up:
        started = time.monotonic()

        @app.timer(1.0)
        @guarded("replay progress", wiring.metrics)
        async def stop_when_caught_up() -> None:
            lag = sum((await group_lag(settings, group, input_topics(settings))).values())
            progress = wiring.metrics.total() - wiring.metrics.get("records_out:xp.facts.v1", 0)
            print(f"\rreplay generation {settings.rules.generation}: {lag:,} records behind, "
                  f"{progress:,} processed ({time.monotonic() - started:.0f}s)", end="", file=sys.stderr, flush=True)
            if lag == 0 and wiring.metrics.get("caught_up_checks", 0) >= 1:
                print(f"\nreplay generation {settings.rules.generation}: caught up", file=sys.stderr, flush=True)
                os.kill(os.getpid(), signal.SIGTERM)  # a clean stop: commit, flush, close
            wiring.metrics["caught_up_checks"] = wiring.metrics.get("caught_up_checks", 0) + 1 if lag == 0 else 0

    worker = BoundedStopWorker(app, loglevel=loglevel, quiet=True)
    worker.spinner = None  # faust's spinner switches the root logger to DEBUG
    worker.execute_from_commandline()
