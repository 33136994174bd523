"""A failed end-to-end test shows the end of each process's log (the processes' own
files in the test's tmp_path: a worker's, a gateway's), so that a failure on a clean
CI clone, whose tmp_path is gone, says what the processes were doing."""

from __future__ import annotations

from pathlib import Path

import pytest

LOG_LINES = 60


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    tmp_path = getattr(item, "funcargs", {}).get("tmp_path")
    if report.when != "call" or not report.failed or not isinstance(tmp_path, Path):
        return
    for log in sorted(tmp_path.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()[-LOG_LINES:]
        report.sections.append((f"last {len(lines)} lines of {log.name}", "\n".join(lines)))
