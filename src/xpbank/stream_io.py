"""The worker's edges: decision state on Faust tables, and publishing outputs.

Table values are the codec's bytes; the domain never sees a faust.Record."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable
from datetime import UTC, datetime

from xpbank import codec
from xpbank.core.attempts import AttemptState
from xpbank.core.banking import MasteryRef, PairState
from xpbank.events import CourseUpserted
from xpbank.handlers import OutputRecord
from xpbank.state import pair_key

ORIGIN_HEADERS = ("xpbank-origin-topic", "xpbank-origin-partition", "xpbank-origin-offset", "xpbank-origin-key")
_INT64 = struct.Struct(">q")


class TableStore:
    """StateStore on Faust tables: bytes keys and values, replaced never mutated."""

    def __init__(self, watermarks, pairs, attempts, masteries, positions, courses) -> None:
        self.watermarks, self.pairs, self.attempt_states = watermarks, pairs, attempts
        self.masteries, self.positions, self.courses = masteries, positions, courses

    @staticmethod
    def _key(user: str, other: str) -> bytes:
        return pair_key(user, other).encode("utf-8")

    def watermark(self, user: str) -> int | None:
        raw = self.watermarks.get(user.encode("utf-8"))
        return None if raw is None else _INT64.unpack(raw)[0]

    def set_watermark(self, user: str, micros: int) -> None:
        self.watermarks[user.encode("utf-8")] = _INT64.pack(micros)

    def pair(self, user: str, resource: str) -> PairState | None:
        raw = self.pairs.get(self._key(user, resource))
        return None if raw is None else codec.decode_pair(raw)

    def set_pair(self, user: str, resource: str, pair: PairState) -> None:
        self.pairs[self._key(user, resource)] = codec.encode_pair(pair)

    def attempts(self, user: str, exercise: str) -> AttemptState | None:
        raw = self.attempt_states.get(self._key(user, exercise))
        return None if raw is None else codec.decode_attempts(raw)

    def set_attempts(self, user: str, exercise: str, state: AttemptState) -> None:
        self.attempt_states[self._key(user, exercise)] = codec.encode_attempts(state)

    def mastery(self, user: str, exercise: str) -> MasteryRef | None:
        raw = self.masteries.get(self._key(user, exercise))
        return None if raw is None else codec.decode_mastery_ref(raw)

    def set_mastery(self, user: str, exercise: str, ref: MasteryRef) -> None:
        self.masteries[self._key(user, exercise)] = codec.encode_mastery_ref(ref)

    def position(self, user: str, source: str) -> int | None:
        raw = self.positions.get(self._key(user, source))
        return None if raw is None else _INT64.unpack(raw)[0]

    def set_position(self, user: str, source: str, offset: int) -> None:
        self.positions[self._key(user, source)] = _INT64.pack(offset)

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
