"""Write the golden corpora and their expected outputs with the code as it is now:
`python -m tests.golden.generate` (only when a decision is meant to change, and then
review the diff of the outputs).

- corpora/builders.jsonl.gz: the records every hypothesis-free unit test feeds to a
  Simulator (captured by tests/golden/capture.py, dates fixed), one scenario a line;
- corpora/classroom-L-S.jsonl.gz: the e2e tests' classroom logs (L learners, seed S)
  from a fixed start;
- corpora/mutations.jsonl.gz: damaged input (tests/golden/mutations.py);
- expected/: per corpus, `simulate` output bytes and the worker path's steps
  (tests/golden/corpus.py); per examples/*.jsonl, `xpbank simulate`'s output."""

from __future__ import annotations

import sys

import orjson
import pytest

from tests.golden import capture
from tests.golden.corpus import (
    CLASSROOMS, EXAMPLES, GOLDEN, ROOT, classroom_records, load_scenarios, record_doc, record_of, rules_doc,
    save_scenarios, simulate_bytes, simulate_file_bytes, worker_bytes, write_gz,
)
from tests.golden.mutations import mutated_records
from xpbank.core.rules import Rules

CORPORA = GOLDEN / "corpora"
EXPECTED = GOLDEN / "expected"


def builder_scenarios() -> list[dict]:
    code = pytest.main(["-q", "-p", "no:cacheprovider", "-p", "tests.golden.capture", "--no-header",
                        str(ROOT / "tests/unit"), f"--ignore={ROOT / 'tests/unit/test_golden.py'}"])
    print(f"capture run: pytest exit code {code} (tests that pin today's date fail with fixed dates)")
    unique: dict[bytes, dict] = {}
    for scenario in capture.SCENARIOS:
        if scenario["records"]:
            content = orjson.dumps([scenario["rules"], scenario["prefix"], scenario["records"]])
            unique.setdefault(content, scenario)
    named, seen = [], {}
    for scenario in unique.values():
        n = seen[scenario["name"]] = seen.get(scenario["name"], 0) + 1
        named.append(scenario | {"name": f"{scenario['name']}#{n}"})
    return named


def expected_of(scenarios: list[dict]) -> tuple[list[bytes], list[bytes]]:
    simulated, worked = [], []
    for scenario in scenarios:
        rules = Rules(**scenario["rules"])
        records = [record_of(doc) for doc in scenario["records"]]
        header = orjson.dumps({"scenario": scenario["name"]})
        simulated += [header, *simulate_bytes(records, rules, scenario["prefix"]).splitlines()]
        worked += [header, *worker_bytes(records, rules).splitlines()]
    return simulated, worked


def main() -> int:
    CORPORA.mkdir(exist_ok=True)
    (EXPECTED / "examples").mkdir(parents=True, exist_ok=True)
    corpora = {"builders": builder_scenarios()}
    for learners, seed in CLASSROOMS:
        records = classroom_records(learners, seed)
        corpora[f"classroom-{learners}-{seed}"] = [
            {"name": f"classroom learners={learners} seed={seed}", "rules": rules_doc(Rules()), "prefix": "",
             "records": [record_doc(r) for r in records]}]
    corpora["mutations"] = [{"name": "mutations seed=14", "rules": rules_doc(Rules()), "prefix": "",
                             "records": [record_doc(r) for r in mutated_records()]}]
    for name, scenarios in corpora.items():
        save_scenarios(CORPORA / f"{name}.jsonl.gz", scenarios)
        simulated, worked = expected_of(load_scenarios(CORPORA / f"{name}.jsonl.gz"))
        write_gz(EXPECTED / f"{name}.simulate.jsonl.gz", simulated)
        write_gz(EXPECTED / f"{name}.worker.jsonl.gz", worked)
        print(f"{name}: {len(scenarios)} scenarios, {sum(len(s['records']) for s in scenarios)} records")
    for path in sorted(EXAMPLES.glob("*.jsonl")):
        (EXPECTED / "examples" / f"{path.stem}.simulate.jsonl").write_bytes(simulate_file_bytes(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
