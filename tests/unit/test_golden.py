"""Decisions unchanged: `simulate` and the worker's path give, byte for byte, the outputs
(dead-letter details included) and counters the code gave before the hot path was
optimised, on every corpus the tests and examples/ use (tests/golden/)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.golden.corpus import (
    EXAMPLES, GOLDEN, load_scenarios, read_gz, record_of, simulate_bytes, simulate_file_bytes, worker_bytes,
)
from xpbank.core.rules import Rules

CORPORA = sorted((GOLDEN / "corpora").glob("*.jsonl.gz"))


def first_difference(got: bytes, want: bytes) -> str:
    got_lines, want_lines = got.splitlines(), want.splitlines()
    scenario = "?"
    for n, (a, b) in enumerate(zip(got_lines, want_lines), 1):
        if b.startswith(b'{"scenario":'):
            scenario = orjson.loads(b)["scenario"]
        if a != b:
            return f"scenario {scenario}, line {n}:\n  got  {a[:600]!r}\n  want {b[:600]!r}"
    return f"{len(got_lines)} lines, expected {len(want_lines)}"


def run(path: Path, way) -> bytes:
    out: list[bytes] = []
    for scenario in load_scenarios(path):
        records = [record_of(doc) for doc in scenario["records"]]
        rules = Rules(**scenario["rules"])
        produced = simulate_bytes(records, rules, scenario["prefix"]) if way == "simulate" else worker_bytes(records, rules)
        out += [orjson.dumps({"scenario": scenario["name"]}), *produced.splitlines()]
    return b"".join(line + b"\n" for line in out)


def test_the_corpora_are_there():
    names = {p.name.removesuffix(".jsonl.gz") for p in CORPORA}
    assert "builders" in names and len([n for n in names if n.startswith("classroom-")]) >= 5


@pytest.mark.parametrize("way", ["simulate", "worker"])
@pytest.mark.parametrize("corpus", CORPORA, ids=lambda p: p.name.removesuffix(".jsonl.gz"))
def test_outputs_are_byte_identical_to_the_golden_copy(corpus, way):
    want = read_gz(GOLDEN / "expected" / corpus.name.replace(".jsonl.gz", f".{way}.jsonl.gz"))
    got = run(corpus, way)
    assert got == want, first_difference(got, want)


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.jsonl")), ids=lambda p: p.name)
def test_simulate_on_the_examples_is_byte_identical_to_the_golden_copy(example):
    golden = GOLDEN / "expected" / "examples" / f"{example.stem}.simulate.jsonl"
    assert golden.exists(), f"no golden copy for {example.name}: python -m tests.golden.generate"
    got, want = simulate_file_bytes(example), golden.read_bytes()
    assert got == want, first_difference(got, want)
