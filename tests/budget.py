"""Hypothesis for every test (loaded by tests/conftest.py, before any test module): a
fixed sequence of examples (derandomized, no example database), so a property that
passes once passes every run, in CI as here, and whether `make mutate` kills a mutant
does not depend on the run. `examples(n)` scales a property's own number of examples by
XPBANK_HYPOTHESIS_SCALE (default 1): `make mutate` runs them at a fifth, since every
mutant of a function they cover runs them again."""

from __future__ import annotations

import os

from hypothesis import settings

SCALE = float(os.environ.get("XPBANK_HYPOTHESIS_SCALE") or 1)
settings.register_profile("xpbank", derandomize=True, database=None)
settings.load_profile("xpbank")


def examples(count: int) -> int:
    return max(10, round(count * SCALE))
