"""`xpbank simulate`: the rules run offline over a record log in arrival order, with
the records xpbank publishes to its own inputs (ExerciseMastered) processed right after
the record that caused them (SPEC §3.4.8)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from xpbank.contract import codec
from xpbank.core.rules import Rules
from xpbank.contract.events import ExerciseMastered
from xpbank.contract.records import InputRecord, OutputRecord
from xpbank.processing.handlers import handle_record
from xpbank.contract.outputs import XpFact
from xpbank.processing.state import MemoryStore
from xpbank.contract.topics import MASTERY


class Simulator:
    def __init__(self, rules: Rules, prefix: str = "") -> None:
        self.rules = rules
        self.prefix = prefix
        self.store = MemoryStore()
        self.counts: Counter = Counter()

    def feed(self, record: InputRecord) -> list[OutputRecord]:
        pending = [record]
        produced: list[OutputRecord] = []
        while pending:
            handled = handle_record(self.store, pending.pop(0), self.rules)
            self.counts.update(handled.counts)
            produced.extend(handled.outputs)
            pending.extend(
                InputRecord(
                    topic=MASTERY,
                    key=out.key.encode("utf-8") if out.key else None,
                    value=codec.encode(out.value),
                    timestamp=out.timestamp,
                    partition=None,
                    offset=record.offset,
                    topic_full_name=self.prefix + MASTERY,
                )
                for out in handled.outputs
                if isinstance(out.value, ExerciseMastered)
            )
        return produced

    def run(self, records: Iterable[InputRecord]) -> Iterator[OutputRecord]:
        for record in records:
            yield from self.feed(record)


def current_facts(outputs: Iterable[OutputRecord]) -> dict[str, XpFact]:
    """What a fact consumer holds: per factId the greatest (generation, revision)."""
    facts: dict[str, XpFact] = {}
    for out in outputs:
        fact = out.value
        if isinstance(fact, XpFact):
            held = facts.get(fact.factId)
            if held is None or (fact.generation, fact.revision) > (held.generation, held.revision):
                facts[fact.factId] = fact
    return facts
