"""Writes tests/golden/corpora/faust-v1-state.json.gz: the state the Faust engine's five
tables (the faust-v1 layout, processing/upcast.py) held after the first half of a
classroom, as the code before the one key layout wrote it. It ran once, on commit
5e92d94 (`git worktree add /tmp/v1 5e92d94`, then from /tmp/v1 with
`PYTHONPATH=/tmp/v1/src:/tmp/v1 python <this file>`); the code it imports is gone
since. tests/unit/test_upcast.py continues the classroom over that state."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import orjson

from tests.golden.corpus import DictCheckpoint, classroom_records, table_store  # noqa: F401 - the old corpus
from xpbank.contract import codec
from xpbank.contract.events import ExerciseMastered
from xpbank.contract.topics import CURRICULUM, MASTERY
from xpbank.core.rules import Rules
from xpbank.processing.handlers import InputRecord, handle_record
from xpbank.processing.state import BufferedStore

CLASSROOM = (8, 5)


def main(out: Path) -> None:
    records = classroom_records(*CLASSROOM)
    done = len(records) // 2
    store, courses = table_store()
    rules, mastery_offset = Rules(), 0
    for original in records[:done]:  # the worker's path of the old corpus.worker_bytes
        original = original._replace(partition=0) if original.partition is None else original
        if original.topic == CURRICULUM:
            handle_record(courses, original, rules)
            continue
        pending = [(original, (original.key or b"").decode("utf-8", "replace"), False)]
        while pending:
            record, owner, copy = pending.pop(0)
            buffered = BufferedStore(store)
            handled = handle_record(buffered, record, rules, owner=owner, rekeyed=copy)
            buffered.flush()
            pending.extend((record, user, True) for user in sorted(handled.foreign_users))
            for o in handled.outputs:
                if isinstance(o.value, ExerciseMastered):
                    mastery_offset += 1
                    pending.append((InputRecord(MASTERY, o.key.encode(), codec.encode(o.value), o.timestamp,
                                                partition=0, offset=mastery_offset, topic_full_name=MASTERY), o.key, False))
    tables = {name: sorted([key.hex(), value.hex()] for key, value in table.items())
              for name, table in store.checkpoint.tables.items()}
    body = {"classroom": CLASSROOM, "records_done": done, "mastery_offset": mastery_offset, "tables": tables}
    out.write_bytes(gzip.compress(orjson.dumps(body, option=orjson.OPT_INDENT_2), mtime=0))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "corpora" / "faust-v1-state.json.gz")
