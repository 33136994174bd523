"""A pytest plugin that records, for `generate.py`, the records every hypothesis-free
unit test feeds to a Simulator: the builders' scenarios become golden corpora.

Builders date records relative to now; here their BASE and simulate's clock fallback
(a line without a timestamp) are fixed, so capturing twice gives the same corpora."""

from __future__ import annotations

import hypothesis
import pytest

from tests.golden.corpus import FIXED_START, FixedClock, record_doc, rules_doc

SCENARIOS: list[dict] = []
_running: list[str] = [""]


def pytest_configure(config) -> None:
    import tests.builders as builders
    import xpbank.cli.records as records
    from xpbank.processing.simulate import Simulator

    builders.BASE = FIXED_START
    records.datetime = FixedClock
    init, feed = Simulator.__init__, Simulator.feed

    def capturing_init(self, rules, prefix: str = "") -> None:
        init(self, rules, prefix)
        self._golden = None
        if not hypothesis.currently_in_test_context():
            self._golden = {"name": _running[0], "rules": rules_doc(rules), "prefix": prefix, "records": []}
            SCENARIOS.append(self._golden)

    def capturing_feed(self, record):
        if getattr(self, "_golden", None) is not None:
            self._golden["records"].append(record_doc(record))
        return feed(self, record)

    Simulator.__init__, Simulator.feed = capturing_init, capturing_feed


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    _running[0] = item.nodeid
    yield
    _running[0] = ""
