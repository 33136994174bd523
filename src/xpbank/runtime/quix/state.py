"""The state protocol of `handle_record` on a Quix partition transaction. A learner's
keys share one prefix (their sourcedId, length-prefixed so that no two learners' keys can
meet); every value starts with a non-zero version byte: Quix's restore of a store misreads
values that start with an 8-byte epoch timestamp as TTL stamps."""

from __future__ import annotations

from xpbank.contract.events import CourseUpserted
from xpbank.core.attempts import AttemptState
from xpbank.core.banking import MasteryRef, PairState
from xpbank.processing import state_codec

encode_int, decode_int = state_codec.encode_int, state_codec.decode_int
WATERMARK, PAIR, ATTEMPTS, MASTERY, POSITION = b"w", b"p:", b"a:", b"m:", b"o:"


def learner_prefix(user: str) -> bytes:
    raw = user.encode("utf-8")
    return len(raw).to_bytes(4, "big") + raw


class QuixStore:
    """StateStore over one partition's transaction; courses come from the curriculum view."""

    __slots__ = ("tx", "courses")

    def __init__(self, tx, courses) -> None:
        self.tx, self.courses = tx, courses

    def _get(self, user: str, key: bytes) -> bytes | None:
        return self.tx.get_bytes(key, prefix=learner_prefix(user))

    def _set(self, user: str, key: bytes, value: bytes) -> None:
        self.tx.set_bytes(key, value, prefix=learner_prefix(user))

    def watermark(self, user: str) -> int | None:
        raw = self._get(user, WATERMARK)
        return None if raw is None else decode_int(raw)

    def set_watermark(self, user: str, micros: int) -> None:
        self._set(user, WATERMARK, encode_int(micros))

    def pair(self, user: str, resource: str) -> PairState | None:
        raw = self._get(user, PAIR + resource.encode("utf-8"))
        return None if raw is None else state_codec.decode_pair(raw)

    def set_pair(self, user: str, resource: str, pair: PairState) -> None:
        self._set(user, PAIR + resource.encode("utf-8"), state_codec.encode_pair(pair))

    def attempts(self, user: str, exercise: str) -> AttemptState | None:
        raw = self._get(user, ATTEMPTS + exercise.encode("utf-8"))
        return None if raw is None else state_codec.decode_attempts(raw)

    def set_attempts(self, user: str, exercise: str, state: AttemptState) -> None:
        self._set(user, ATTEMPTS + exercise.encode("utf-8"), state_codec.encode_attempts(state))

    def mastery(self, user: str, exercise: str) -> MasteryRef | None:
        raw = self._get(user, MASTERY + exercise.encode("utf-8"))
        return None if raw is None else state_codec.decode_mastery_ref(raw)

    def set_mastery(self, user: str, exercise: str, ref: MasteryRef) -> None:
        self._set(user, MASTERY + exercise.encode("utf-8"), state_codec.encode_mastery_ref(ref))

    def position(self, user: str, source: str) -> int | None:
        raw = self._get(user, POSITION + source.encode("utf-8"))
        return None if raw is None else decode_int(raw)

    def set_position(self, user: str, source: str, offset: int) -> None:
        self._set(user, POSITION + source.encode("utf-8"), encode_int(offset))

    def course(self, course: str) -> CourseUpserted | None:
        return self.courses.get(course)

    def set_course(self, course: str, value: CourseUpserted | None) -> None:
        """Nothing to do: every worker's curriculum view follows the topic itself."""
