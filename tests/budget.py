"""How many examples a Hypothesis property tries: its own number, scaled by
XPBANK_HYPOTHESIS_SCALE (default 1). `make mutate` runs them smaller, since every
mutant of a function they cover runs them again, and derandomized, so that whether a
mutant is killed does not depend on the run."""

from __future__ import annotations

import os

from hypothesis import settings

SCALE = float(os.environ.get("XPBANK_HYPOTHESIS_SCALE") or 1)
if SCALE != 1:  # the parent of every property's own settings: a fixed sequence of examples
    settings.register_profile("scaled", derandomize=True, database=None)
    settings.load_profile("scaled")


def examples(count: int) -> int:
    return max(10, round(count * SCALE))
