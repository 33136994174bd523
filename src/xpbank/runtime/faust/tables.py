"""The worker's edges: decision state on Faust tables, and publishing outputs.

Table values are the codec's bytes; the domain never sees a faust.Record."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from xpbank.contract import codec
from xpbank.processing import state_codec
from xpbank.core.attempts import AttemptState
from xpbank.core.banking import MasteryRef, PairState
from xpbank.contract.events import CourseUpserted
from xpbank.contract.records import OutputRecord
from xpbank.contract.identifiers import store_part
from xpbank.processing.state import pair_key
from xpbank.runtime.faust.checkpoint import Checkpoint



class _Column:
    """A Faust table seen through a codec and the checkpoint: bytes in the table, values
    outside; writes wait in the checkpoint, reads see them."""

    def __init__(self, store: TableStore, name: str, encode: Callable, decode: Callable) -> None:
        self.store, self.name, self.encode, self.decode = store, name, encode, decode

    def get(self, key: bytes):
        raw = self.store.checkpoint.get(self.name, key, self.store.partition)
        return None if raw is None else self.decode(raw)

    def set(self, key: bytes, value) -> None:  # replaced, never mutated in place
        self.store.checkpoint.put(self.name, key, self.encode(value), self.store.partition)


class TableStore:
    """StateStore on Faust tables (bytes keys and values), through the checkpoint. A
    learner's keys live in the table partition of the record being processed: set
    `partition` before handing the store to `handle_record`."""

    def __init__(self, checkpoint: Checkpoint, courses) -> None:
        self.checkpoint, self.courses = checkpoint, courses
        self.partition = 0
        self.watermarks = _Column(self, "watermarks", state_codec.encode_int, state_codec.decode_int)
        self.pairs = _Column(self, "pairs", state_codec.encode_pair, state_codec.decode_pair)
        self.attempt_states = _Column(self, "attempts", state_codec.encode_attempts, state_codec.decode_attempts)
        self.masteries = _Column(self, "masteries", state_codec.encode_mastery_ref, state_codec.decode_mastery_ref)
        self.positions = _Column(self, "positions", state_codec.encode_int, state_codec.decode_int)

    @staticmethod
    def _key(user: str, other: str = "") -> bytes:
        return (pair_key(user, other) if other else store_part(user)).encode("utf-8")

    def watermark(self, user: str) -> int | None:
        return self.watermarks.get(self._key(user))

    def set_watermark(self, user: str, micros: int) -> None:
        self.watermarks.set(self._key(user), micros)

    def pair(self, user: str, resource: str) -> PairState | None:
        return self.pairs.get(self._key(user, resource))

    def set_pair(self, user: str, resource: str, pair: PairState) -> None:
        self.pairs.set(self._key(user, resource), pair)

    def attempts(self, user: str, exercise: str) -> AttemptState | None:
        return self.attempt_states.get(self._key(user, exercise))

    def set_attempts(self, user: str, exercise: str, state: AttemptState) -> None:
        self.attempt_states.set(self._key(user, exercise), state)

    def mastery(self, user: str, exercise: str) -> MasteryRef | None:
        return self.masteries.get(self._key(user, exercise))

    def set_mastery(self, user: str, exercise: str, ref: MasteryRef) -> None:
        self.masteries.set(self._key(user, exercise), ref)

    def position(self, user: str, source: str) -> int | None:
        return self.positions.get(self._key(user, source))

    def set_position(self, user: str, source: str, offset: int) -> None:
        self.positions.set(self._key(user, source), offset)

    def course(self, course: str) -> CourseUpserted | None:
        return self.courses.get(course)

    def set_course(self, course: str, value: CourseUpserted | None) -> None:
        """Nothing to do: every worker's curriculum view follows the topic itself."""


def to_seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


async def send(topics: dict[str, object], outputs: Iterable[OutputRecord]) -> list:
    """Send every output now; returns what the broker's acknowledgements are awaited on
    (at the next checkpoint, before any state written after them)."""
    pending = []
    for out in outputs:
        topic = topics[out.topic]
        pending.append(
            await topic.send(  # type: ignore[attr-defined]
                key=None if out.key is None else out.key.encode("utf-8"),
                value=codec.encode(out.value),
                timestamp=to_seconds(out.timestamp),
                # publish now: without force, Faust attaches the message to the source
                # offset and sends it only at commit (and a rebalance drops attachments)
                force=True,
            )
        )
    return pending
