"""The engine-neutral processing unit: what happens to a consumed record, the same on
every engine. An engine hands it a record and its partition's `StatePort`, sends what
it returns, and writes checkpoints; the unit owns the rest:

- the record as the producer sent it (a routed copy carries its origin in headers);
- `handle_record` over the partition's `LearnerState` (processing/learner_state.py),
  kept across records: the record's writes are its own until `keep`, and each changed
  value is written to the partition's port once per checkpoint (`write_back`, called by
  the engine into the checkpoint it commits), positions last;
- the re-keyed copies to send to other learners' partitions;
- its outputs: held in the partition's outbox until the state is durable (at least
  once, runtime/outbox.py), or handed back to be sent in the checkpoint's transaction
  (exactly once);
- the Faust engine's ledger (the last offset processed per input partition) with the
  record's state;
- counts, logs and the latency of outputs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from xpbank.config import Settings
from xpbank.contract.identifiers import escaped
from xpbank.observe.latency import Histogram
from xpbank.contract.records import InputRecord
from xpbank.processing.handlers import Handled, handle_record
from xpbank.processing.learner_state import LearnerState, StatePort
from xpbank.runtime import outbox
from xpbank.runtime.outbox import Item, Outbox
from xpbank.runtime.records import input_record, learner_record, observe, origin_headers
from xpbank.runtime.topology import rekeyed_topic

# the owner the ledger's positions are kept under: no learner's sourcedId contains NUL
DELIVERED = "\x00delivered"


def ledger_key(topic: str, partition: int) -> str:
    """(Kafka's topic names hold no `:`; escaped all the same, as every combined id is.)"""
    return f"{escaped(topic)}:{partition}"


class Step(NamedTuple):
    """A record applied, not yet kept: what the engine sends for it, re-keyed copies
    (key and headers; the value and timestamp are the record's) and, exactly once,
    outputs to send in the checkpoint's transaction. Once they are sent, `keep` puts the
    record's state and held outputs into the checkpoint; a send that fails first leaves
    nothing behind, and the record is applied again."""
    copies: list[tuple[bytes, list[tuple[str, bytes]]]]
    outputs: list[Item]
    held: list[Item]
    state: LearnerState
    record: InputRecord
    handled: Handled
    owner: str
    is_copy: bool


_new_step = tuple.__new__  # Step(...) without its Python-level __new__: one per record


class ProcessingUnit:
    def __init__(self, settings: Settings, curriculum, *, keeps_ledger: bool, holds_outputs: bool,
                 metrics: Counter | None = None, latency: Histogram | None = None) -> None:
        self.rules, self.prefix, self.partitions = settings.rules, settings.topic_prefix, settings.partitions
        self.rekeyed_name = rekeyed_topic(settings)
        self.curriculum = curriculum
        self.keeps_ledger, self.holds_outputs = keeps_ledger, holds_outputs
        self.metrics = Counter() if metrics is None else metrics
        self.latency = Histogram() if latency is None else latency  # record timestamp -> outputs published
        self.outbox = Outbox()
        self.states: dict[int, LearnerState] = {}  # per learner partition

    def state(self, partition: int, port: StatePort) -> LearnerState:
        """The partition's state, reading from `port` (the engine's current one)."""
        state = self.states.get(partition)
        if state is None:
            state = self.states[partition] = LearnerState(port, self.curriculum)
        else:
            state.port = port
        return state

    def write_back(self, port_of: Callable[[int], StatePort]) -> int:
        """Every partition's changed values into its port (`port_of(partition)`): call
        with every checkpoint, before it is committed. Returns how many were written."""
        return sum(state.write_back(port_of(partition)) for partition, state in self.states.items() if state.dirty)

    def forget(self, partitions) -> None:
        """Partitions revoked or lost: their state is read again from the store if they
        come back (another worker may have changed it meanwhile)."""
        for partition in partitions:
            self.states.pop(partition, None)

    def learner(self, port: StatePort, topic: str, partition: int, offset: int, key: bytes | None,
                value: bytes | None, headers, timestamp: datetime | None) -> Step:
        """Apply one learner-partition record to its partition's state (read through
        `port`); nothing is kept before `keep`."""
        record, owner, is_copy = learner_record(topic, partition, offset, key, value, headers, timestamp,
                                                self.prefix, self.rekeyed_name, self.partitions)
        state = self.state(partition, port)
        state.discard()  # a record applied before whose sends failed: applied again
        handled = handle_record(state, record, self.rules, owner=owner, rekeyed=is_copy)
        copies = []
        if handled.foreign_users:
            origin = origin_headers(record)
            copies = [(user.encode(), origin) for user in sorted(handled.foreign_users)]
        items = outbox.pending(handled.outputs, self.prefix) if handled.outputs else []
        if self.holds_outputs:
            return _new_step(Step, (copies, [], items, state, record, handled, owner, is_copy))
        return _new_step(Step, (copies, items, [], state, record, handled, owner, is_copy))

    def keep(self, step: Step, topic: str, partition: int, offset: int) -> None:
        """The record's copies (and exactly-once outputs) are sent: its state and held
        outputs go into the checkpoint (the ledger's position with them, when kept)."""
        self.outbox.hold(partition, step.held)
        if self.keeps_ledger:
            step.state.set_position(DELIVERED, ledger_key(topic, partition), offset)
        step.state.keep()
        observe(self.metrics, step.record, step.handled, rekeyed=step.is_copy, owner=step.owner)

    def curriculum_record(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                          timestamp: datetime | None) -> list[Item]:
        """A curriculum record: its dead letters to send (the curriculum view keeps the courses)."""
        record = input_record(topic, partition, offset, key, value, timestamp, self.prefix)
        handled = handle_record(LearnerState(None, self.curriculum), record, self.rules)
        observe(self.metrics, record, handled)
        return outbox.pending(handled.outputs, self.prefix)

    def ledger(self, port: StatePort, topic: str, partition: int) -> int | None:
        """The last offset of (topic, partition) processed, as the partition's state has it."""
        return self.state(partition, port).position(DELIVERED, ledger_key(topic, partition))
