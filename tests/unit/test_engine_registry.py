"""Engines come from one registry (runtime/engines.py): the names Settings accepts, the
group and changelog names each gives (unchanged by the registry: a running deployment
keeps its groups and state), and what the worker's runner asks of each."""

from __future__ import annotations

import importlib
import inspect

from xpbank.config import ENGINES as NAMES
from xpbank.config import Settings
from xpbank.runtime.engines import ENGINES, EngineRun, engine_of
from xpbank.runtime.topology import app_id, changelogs


def test_the_registry_holds_exactly_the_engines_settings_accept():
    assert set(ENGINES) == set(NAMES)
    for name in NAMES:
        assert engine_of(Settings.from_env({"XPBANK_ENGINE": name})).name == name


def test_group_and_changelog_names_are_the_ones_each_engine_always_had():
    faust = Settings.from_env({"XPBANK_ENGINE": "faust", "XPBANK_GENERATION": "3"})
    quix = Settings.from_env({"XPBANK_ENGINE": "quix", "XPBANK_GENERATION": "3"})
    assert app_id(faust) == "xpbank-g3" and app_id(quix) == "xpbank-quix-g3"
    # one store of one key layout on both engines (Faust's five tables of before are read through)
    assert changelogs(faust) == ["xpbank-g3-learners-changelog"]
    assert changelogs(quix) == ["xpbank-quix-g3-learners-changelog"]


def test_every_engine_offers_what_the_runner_asks():
    asked = [name for name in dir(EngineRun) if not name.startswith("_")]
    asked += list(EngineRun.__annotations__)
    for engine in ENGINES.values():
        module, _, name = engine.runner.partition(":")
        runner = getattr(importlib.import_module(module), name)
        assert [attribute for attribute in asked if not hasattr(runner, attribute)
                and attribute not in ("metrics", "latency")] == [], engine.name
        assert list(inspect.signature(runner).parameters)[:5] == ["settings", "curriculum", "probe", "metrics",
                                                                 "latency"]
        assert inspect.iscoroutinefunction(runner.caught_up)
