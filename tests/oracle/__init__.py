"""A second oracle: SPEC §3 written again, plainly, for the tests.

It imports nothing of xpbank: it reads record lines (SPEC §5) as plain JSON and applies
the rules of SPEC §2-§3 in arrival order, as `xpbank simulate` promises to (a mastery
xpbank publishes is processed right after the record that caused it, §3.4.8). Where
SPEC.md leaves room it follows the readings in docs/decisions.md ("Spec readings").
Written for clarity, not speed: `tests/unit/test_oracle.py` compares it with `simulate`
on generated classrooms, and the e2e tests compare the workers with it.

    oracle = run_lines(lines)            # or run(records, Limits(...), prefix)
    views.current_facts(oracle)          # factId -> fact (JSON values)
"""

from __future__ import annotations

from tests.oracle.fields import Limits
from tests.oracle.model import Oracle
from tests.oracle.records import Record, from_lines


def run(records: list[Record], limits: Limits = Limits(), prefix: str = "") -> Oracle:
    oracle = Oracle(limits, prefix)
    for record in records:
        oracle.feed(record)
    return oracle


def run_lines(lines: list[dict], limits: Limits = Limits(), prefix: str = "") -> Oracle:
    return run(from_lines(lines, prefix), limits, prefix)


__all__ = ["Limits", "Oracle", "Record", "run", "run_lines"]
