"""Golden corpora: record logs with the exact outputs the decision code gave for them.

Two ways through the same records:

- `simulate_bytes`: what `xpbank simulate` prints (one output line per output record)
  and its counters;
- `worker_bytes`: the worker's path without Kafka: `handle_record` with `owner` = the
  record key, routed copies (`rekeyed=True`) for the learners a record is not keyed by,
  self-published masteries fed back, and state kept as the engines keep it (the
  one key layout, the state codec's bytes in a dict, writes buffered and flushed per record).

A corpus is stored as the InputRecords themselves (not record lines), so replaying it
never reads a clock. `tests/golden/generate.py` wrote the corpora and their outputs with
the code as it was before the hot path was optimised; `tests/unit/test_golden.py`
checks the current code still gives the same bytes."""

from __future__ import annotations

import base64
import gzip
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from xpbank.cli import records as record_lines
from xpbank.cli.records import output_line, read_lines
from xpbank.contract import codec
from xpbank.contract.events import ExerciseMastered
from xpbank.contract.times import format_time, parse_time
from xpbank.contract.topics import CURRICULUM, MASTERY
from xpbank.core.rules import Rules
from xpbank.processing.handlers import InputRecord, handle_record
from xpbank.processing.simulate import Simulator
from xpbank.processing.state import MemoryStore
from xpbank.processing.learner_state import DictPort, LearnerState

GOLDEN = Path(__file__).resolve().parent
ROOT = GOLDEN.parents[1]
EXAMPLES = ROOT / "examples"

# classroom corpora: (learners, seed) as the tests and the demo use them
CLASSROOMS = ((3, 2), (16, 3), (8, 5), (6, 9), (12, 11), (8, 17), (6, 21), (8, 41))
# a fixed start for the golden classrooms (2026-11-18): they never reach a broker
FIXED_EPOCH_SECONDS = 1_795_000_000
FIXED_START = datetime.fromtimestamp(FIXED_EPOCH_SECONDS, UTC)


# ---- stored records ----------------------------------------------------------------


def _bytes_out(raw: bytes | None) -> dict | None:
    if raw is None:
        return None
    try:
        return {"text": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode("ascii")}


def _bytes_in(doc: dict | None) -> bytes | None:
    if doc is None:
        return None
    return doc["text"].encode("utf-8") if "text" in doc else base64.b64decode(doc["base64"])


def record_doc(record: InputRecord) -> dict:
    return {
        "topic": record.topic, "key": _bytes_out(record.key), "value": _bytes_out(record.value),
        "timestamp": None if record.timestamp is None else format_time(record.timestamp),
        "partition": record.partition, "offset": record.offset, "topic_full_name": record.topic_full_name,
    }


def record_of(doc: dict) -> InputRecord:
    return InputRecord(
        topic=doc["topic"], key=_bytes_in(doc["key"]), value=_bytes_in(doc["value"]),
        timestamp=None if doc["timestamp"] is None else parse_time(doc["timestamp"]),
        partition=doc["partition"], offset=doc["offset"], topic_full_name=doc["topic_full_name"],
    )


def write_gz(path: Path, lines: list[bytes]) -> None:
    # mtime=0: the same content gives the same file
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(b"".join(line + b"\n" for line in lines))


def read_gz(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


def save_scenarios(path: Path, scenarios: list[dict]) -> None:
    """A scenario: {name, rules, prefix, records: [record_doc]}."""
    write_gz(path, [orjson.dumps(s) for s in scenarios])


def load_scenarios(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in read_gz(path).splitlines() if line]


def rules_doc(rules: Rules) -> dict:
    return asdict(rules)


# ---- the two paths -----------------------------------------------------------------


def _counts_line(counts: Counter) -> bytes:
    return orjson.dumps({"counts": dict(sorted((k, v) for k, v in counts.items() if v))})


def simulate_bytes(records: list[InputRecord], rules: Rules, prefix: str = "") -> bytes:
    """`xpbank simulate`'s standard output for these records, then its counters."""
    simulator = Simulator(rules, prefix)
    out = [output_line(record, prefix) for record in simulator.run(records)]
    return b"".join(line + b"\n" for line in [*out, _counts_line(simulator.counts)])


class FixedClock(datetime):
    """`now` for record lines without a timestamp: 30 minutes after the fixed start
    (what the builders' BASE assumes)."""

    @classmethod
    def now(cls, tz=None):
        return (FIXED_START + timedelta(minutes=30)).astimezone(tz)


@contextmanager
def fixed_clock() -> Iterator[None]:
    """Record lines read meanwhile fall back to FixedClock.now, not today."""
    saved, record_lines.datetime = record_lines.datetime, FixedClock
    try:
        yield
    finally:
        record_lines.datetime = saved


def simulate_file_bytes(path: Path) -> bytes:
    """`xpbank simulate FILE` (default settings) on a record-line file, lines without a
    timestamp stamped with the fixed clock."""
    with fixed_clock():
        lines = list(read_lines(path.read_bytes().splitlines()))
    return simulate_bytes(lines, Rules())


def table_store() -> tuple[LearnerState, MemoryStore]:
    """The engines' state (the one key layout, bytes values through the state codec)
    over a dict; courses live in a MemoryStore, as the curriculum view holds them."""
    courses = MemoryStore()
    return LearnerState(DictPort(), courses.courses), courses


def worker_bytes(records: list[InputRecord], rules: Rules) -> bytes:
    """One line per handle_record call as the worker makes them (partition 0)."""
    store, courses = table_store()
    return b"".join(line + b"\n" for line in WorkerPath(store, courses, rules).lines(records))


class WorkerPath:
    """The worker's path over one partition's state (`store`): resumable, so that a log
    can be processed in two parts, over state another layout kept in between. A
    LearnerState is written back and read afresh after every record (unless `keeps_state`),
    as if each were its own checkpoint: every value goes through its bytes."""

    def __init__(self, store, courses: MemoryStore, rules: Rules, *, keeps_state: bool = False) -> None:
        self.store, self.courses, self.rules = store, courses, rules
        self.kept = isinstance(store, LearnerState)
        self.checkpoints = self.kept and not keeps_state
        self.mastery_offset = 0

    def lines(self, records: list[InputRecord]) -> Iterator[bytes]:
        for original in records:
            if original.partition is None:  # a broker record has one
                original = original._replace(partition=0)
            if original.topic == CURRICULUM:
                handled = handle_record(self.courses, original, self.rules)
                yield _step_line(original, None, False, handled)
                continue
            owner = (original.key or b"").decode("utf-8", "replace")
            pending = [(original, owner, False)]
            while pending:
                record, owner, copy = pending.pop(0)
                handled = handle_record(self.store, record, self.rules, owner=owner, rekeyed=copy)
                if self.kept:  # the record's sends are done: its writes are kept
                    self.store.keep()
                if self.checkpoints:  # written back, then read afresh, as by another worker
                    self.store.write_back()
                    self.store = LearnerState(self.store.port, self.store.courses)
                yield _step_line(record, owner, copy, handled)
                pending.extend((record, user, True) for user in sorted(handled.foreign_users))
                for out in handled.outputs:
                    if isinstance(out.value, ExerciseMastered):
                        self.mastery_offset += 1
                        fed = InputRecord(MASTERY, out.key.encode("utf-8"), codec.encode(out.value), out.timestamp,
                                          partition=0, offset=self.mastery_offset, topic_full_name=MASTERY)
                        pending.append((fed, out.key, False))


def _step_line(record: InputRecord, owner: str | None, copy: bool, handled) -> bytes:
    return orjson.dumps({
        "record": [record.topic, record.offset], "owner": owner, "rekeyed": copy,
        "foreign": sorted(handled.foreign_users),
        "counts": dict(sorted((k, v) for k, v in handled.counts.items() if v)),
        "outputs": [orjson.loads(output_line(out)) for out in handled.outputs],
    })


def classroom_records(learners: int, seed: int) -> list[InputRecord]:
    """The e2e tests' classroom log (every 4th learner keyed by device) from a fixed
    start, as `xpbank simulate` reads it (offsets are line numbers)."""
    from tests.e2e.test_parity_and_replay import classroom_log

    return list(read_lines([orjson.dumps(line) for line in classroom_log(learners, seed, start=FIXED_START)]))
