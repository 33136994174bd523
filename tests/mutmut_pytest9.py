"""Loaded only by `make mutate` (pyproject.toml [tool.mutmut]): mutmut 3.7.0 reads
`item._nodeid`, which pytest 9 no longer has (mutmut 3.8 reads `nodeid` but needs a
click that faust-streaming refuses). Each collected test gets the attribute back."""

from __future__ import annotations


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        item._nodeid = item.nodeid
