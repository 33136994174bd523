"""The stream engines a worker can run on, by the name `XPBANK_ENGINE` gives: what each
names on the broker and where its worker is. The rest of xpbank asks this registry
instead of branching on the engine's name; an engine's modules are imported only when
it runs (each is heavy)."""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from xpbank.config import Settings
from xpbank.observe.latency import Histogram


class EngineRun(Protocol):
    """What the worker's runner (entrypoints/worker.py) asks of an engine. `recovered`,
    `rebalancing`, `metrics` and `latency` are read from the runner's thread."""

    name: str
    quiet_loggers: tuple[str, ...]  # its framework's loggers, set to XPBANK_FRAMEWORK_LOGLEVEL
    runs_background: bool  # it runs the curriculum view and the broker probe itself
    metrics: Counter
    latency: Histogram  # record timestamp -> outputs published

    @property
    def recovered(self) -> bool: ...  # partitions assigned once and their state recovered
    @property
    def rebalancing(self) -> bool: ...
    def table_sizes(self) -> dict[str, int]: ...
    async def caught_up(self) -> bool: ...  # every input record present processed, its outputs sent
    def run(self, loglevel: str, started: Callable[[], None]) -> None: ...  # till stopped; `started` once up
    def stop(self) -> None: ...  # a clean stop, from any thread


@dataclass(frozen=True)
class Engine:
    name: str
    group_infix: str  # in the consumer group's name: "" keeps the name Faust's groups always had
    stores: tuple[str, ...]  # its changelog-backed stores, each with a changelog topic
    runner: str  # "module:Class" of its EngineRun, built with (settings, curriculum, probe, metrics, latency)

    def build(self, settings: Settings, curriculum, probe, metrics: Counter, latency: Histogram) -> EngineRun:
        module, _, name = self.runner.partition(":")
        return getattr(importlib.import_module(module), name)(settings, curriculum, probe, metrics, latency)


# every engine keeps the decision state in one store of this name, in one key layout
# (processing/learner_state.py); the Faust engine's earlier tables are read through
# (processing/upcast.py) where they exist
FAUST_TABLE = QUIX_STORE = "learners"

ENGINES: dict[str, Engine] = {
    "faust": Engine("faust", "", (FAUST_TABLE,), "xpbank.runtime.faust.app:FaustEngine"),
    "quix": Engine("quix", "quix-", (QUIX_STORE,), "xpbank.runtime.quix.worker:QuixWorker"),
}


def engine_of(settings: Settings) -> Engine:
    """The engine `settings` name (Settings already refused any other name)."""
    return ENGINES[settings.engine]
