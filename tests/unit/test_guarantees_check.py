"""The guarantees check's breaks still apply to the code (make check-guarantees runs
them; this finds a fragment that moved in seconds, in make test), and each names tests
that exist."""

from __future__ import annotations

from pathlib import Path

from tests.guarantees_check import BREAKS, SRC

ROOT = Path(__file__).resolve().parents[2]


def test_every_break_finds_its_fragment_exactly_once():
    for one in BREAKS:
        assert (SRC / one.path).read_text().count(one.fragment) == 1, one.name


def test_every_named_test_exists():
    for one in BREAKS:
        for node in one.tests:
            path, name = node.split("::")
            assert f"def {name.split('[')[0]}(" in (ROOT / path).read_text(), node
