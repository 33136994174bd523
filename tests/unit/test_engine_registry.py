"""Engines come from one registry (runtime/engines.py): the names Settings accepts, the
group and changelog names each gives (unchanged by the registry: a running deployment
keeps its groups and state), and a worker entry point for each."""

from __future__ import annotations

import importlib
import inspect

from xpbank.config import ENGINES as NAMES
from xpbank.config import Settings
from xpbank.runtime.engines import ENGINES, engine_of
from xpbank.runtime.topology import app_id, changelogs


def test_the_registry_holds_exactly_the_engines_settings_accept():
    assert set(ENGINES) == set(NAMES)
    for name in NAMES:
        assert engine_of(Settings.from_env({"XPBANK_ENGINE": name})).name == name


def test_group_and_changelog_names_are_the_ones_each_engine_always_had():
    faust = Settings.from_env({"XPBANK_ENGINE": "faust", "XPBANK_GENERATION": "3"})
    quix = Settings.from_env({"XPBANK_ENGINE": "quix", "XPBANK_GENERATION": "3"})
    assert app_id(faust) == "xpbank-g3" and app_id(quix) == "xpbank-quix-g3"
    assert changelogs(faust) == [f"xpbank-g3-{t}-changelog" for t in ("watermarks", "pairs", "attempts", "masteries",
                                                                      "positions")]
    assert changelogs(quix) == ["xpbank-quix-g3-learners-changelog"]


def test_every_engine_has_a_worker_entry_point():
    for engine in ENGINES.values():
        run_worker = importlib.import_module(engine.worker_module).run_worker
        parameters = inspect.signature(run_worker).parameters
        assert list(parameters)[:1] == ["settings"] and {"until_caught_up", "loglevel"} <= set(parameters)
