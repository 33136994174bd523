"""`schemas/` is generated from the models; this fails when it is out of date."""

from __future__ import annotations

from pathlib import Path

import orjson

from xpbank.contract.schemas import generate

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


def test_schemas_directory_matches_the_models():
    expected = generate()
    present = {p.name: p.read_bytes() for p in SCHEMAS.glob("*.json")}
    assert sorted(present) == sorted(expected), "run `make schemas`"
    stale = [name for name, content in expected.items() if present[name] != content]
    assert stale == [], f"out of date: {stale}; run `make schemas`"


def test_output_schemas_name_every_contract_field():
    fact = orjson.loads(generate()["XpFact.json"])
    assert set(fact["required"]) >= {
        "factId", "kind", "generation", "revision", "userSourcedId", "email", "date", "courseSourcedId",
        "subject", "resourceSourcedId", "exerciseSourcedId", "attempt", "xp", "eventTime", "sources",
    }
    letter = orjson.loads(generate()["DeadLetter.json"])
    assert set(letter["properties"]["reason"]["enum"]) == {
        "malformed_json", "schema_violation", "payload_too_large", "future_event_time", "too_late",
        "stale_attempt", "unknown_course", "unknown_exercise",
    }
