"""The stream engines a worker can run on, by the name `XPBANK_ENGINE` gives: what each
names on the broker and where its worker is. The rest of xpbank asks this registry
instead of branching on the engine's name; an engine's modules are imported only when
it runs (each is heavy)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from xpbank.config import Settings


@dataclass(frozen=True)
class Engine:
    name: str
    group_infix: str  # in the consumer group's name: "" keeps the name Faust's groups always had
    stores: tuple[str, ...]  # its changelog-backed stores, each with a changelog topic
    worker_module: str  # holds `run_worker(settings, *, until_caught_up=False, loglevel="INFO")`

    def run_worker(self, settings: Settings, **options) -> None:
        importlib.import_module(self.worker_module).run_worker(settings, **options)


FAUST_TABLES = ("watermarks", "pairs", "attempts", "masteries", "positions")
QUIX_STORE = "learners"  # the Quix engine keeps every learner's state in one store

ENGINES: dict[str, Engine] = {
    "faust": Engine("faust", "", FAUST_TABLES, "xpbank.runtime.faust.worker"),
    "quix": Engine("quix", "quix-", (QUIX_STORE,), "xpbank.runtime.quix.worker"),
}


def engine_of(settings: Settings) -> Engine:
    """The engine `settings` name (Settings already refused any other name)."""
    return ENGINES[settings.engine]
