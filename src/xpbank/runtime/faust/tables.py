"""The worker's edges: decision state on Faust tables, and publishing outputs.

Table values are the codec's bytes; the domain never sees a faust.Record."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from xpbank.contract import codec
from xpbank.processing import state_codec
from xpbank.core.attempts import AttemptState
from xpbank.core.banking import MasteryRef, PairState
from xpbank.contract.events import CourseUpserted
from xpbank.processing.handlers import OutputRecord
from xpbank.processing.state import pair_key

ORIGIN_HEADERS = ("xpbank-origin-topic", "xpbank-origin-partition", "xpbank-origin-offset", "xpbank-origin-key")


class _Column:
    """A Faust table seen through a codec: bytes in the table, values outside."""

    def __init__(self, table, encode: Callable, decode: Callable) -> None:
        self.table, self.encode, self.decode = table, encode, decode

    def get(self, key: bytes):
        raw = self.table.get(key)
        return None if raw is None else self.decode(raw)

    def set(self, key: bytes, value) -> None:
        self.table[key] = self.encode(value)  # replaced, never mutated in place


class TableStore:
    """StateStore on Faust tables (bytes keys and values)."""

    def __init__(self, watermarks, pairs, attempts, masteries, positions, courses) -> None:
        self.watermarks = _Column(watermarks, state_codec.encode_int, state_codec.decode_int)
        self.pairs = _Column(pairs, state_codec.encode_pair, state_codec.decode_pair)
        self.attempt_states = _Column(attempts, state_codec.encode_attempts, state_codec.decode_attempts)
        self.masteries = _Column(masteries, state_codec.encode_mastery_ref, state_codec.decode_mastery_ref)
        self.positions = _Column(positions, state_codec.encode_int, state_codec.decode_int)
        self.courses = courses

    @staticmethod
    def _key(user: str, other: str = "") -> bytes:
        return (pair_key(user, other) if other else user).encode("utf-8")

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


def from_timestamp(seconds: float | None) -> datetime | None:
    """Faust gives record timestamps in seconds (float)."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


async def publish(topics: dict[str, object], outputs: Iterable[OutputRecord]) -> int:
    """Send every output now and wait until the broker has acknowledged all of them."""
    pending = []
    for out in outputs:
        topic = topics[out.topic]
        pending.append(
            await topic.send(  # type: ignore[attr-defined]
                key=None if out.key is None else out.key.encode("utf-8"),
                value=codec.encode(out.value),
                timestamp=to_seconds(out.timestamp),
                # publish now: without force, Faust attaches the message to the source
                # offset and sends it only at commit, so waiting for its ack here
                # would wait on ourselves (and a rebalance drops attachments)
                force=True,
            )
        )
    if pending:
        await asyncio.gather(*pending)
    return len(pending)
