"""JSON Schemas for every value type, generated from the models (`make schemas`).
A unit test regenerates them and fails when `schemas/` is out of date."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
from pydantic import TypeAdapter

from xpbank.contract import events, outputs

VALUE_TYPES = {
    "CaliperEnvelope": events.CaliperEnvelope,
    "TimeSpentEvent": events.TimeSpentEvent,
    "AssessmentSubmission": events.Submission,
    "ExerciseMastered": events.ExerciseMastered,
    "CourseUpserted": events.CourseUpserted,
    "AttemptOpened": outputs.AttemptOpened,
    "AttemptCompleted": outputs.AttemptCompleted,
    "AttemptProgressed": outputs.AttemptProgressed,
    "AttemptDiscarded": outputs.AttemptDiscarded,
    "BankedXpAwarded": outputs.BankedXpAwarded,
    "XpFact": outputs.XpFact,
    "DeadLetter": outputs.DeadLetter,
    "BankingDecided": outputs.BankingDecided,
    "SinkDeadLetter": outputs.SinkDeadLetter,
}


def generate() -> dict[str, bytes]:
    files = {}
    for name, model in VALUE_TYPES.items():
        # inputs are described as producers send them, outputs as xpbank writes them
        mode = "serialization" if model.__module__ == outputs.__name__ else "validation"
        schema = TypeAdapter(model).json_schema(mode=mode)
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"{name}.json", **schema}
        schema.setdefault("title", name)
        files[f"{name}.json"] = orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    return files


def write(directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.json"):
        stale.unlink()
    for name, content in generate().items():
        (directory / name).write_bytes(content)
    return sorted(generate())


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "schemas")
    print(f"wrote {len(write(target))} schemas to {target}/")
