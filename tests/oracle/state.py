"""The oracle's state (SPEC §3.2, §3.4) and the two pure formulas (§3.3, §3.4.3)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from tests.oracle.events import Mastery

ATTEMPT_FACTOR = {1: Fraction(1), 2: Fraction(1, 2), 3: Fraction(1, 4)}  # §3.3; 0 from attempt 4


@dataclass
class Decision:
    """§3.4: the mastery that decided a (user, resource) at T, and what it awarded."""

    T: datetime
    mastery: Mastery
    subject: str | None
    kind: str
    cap: int  # the resource's xp
    xp: int = 0  # 0: decided, nothing awarded (§3.4.5: still eligible)
    revision: int = 0


@dataclass
class OpenAttempt:
    number: int
    total_questions: int | None  # from AttemptStarted
    answers: dict[str, bool] = field(default_factory=dict)  # the first answer per question; a skip is False
    reported: set[str] = field(default_factory=set)


@dataclass
class CompletedAttempt:
    number: int
    correct: int
    total: int
    accuracy: float
    exercise_xp: int
    mastered: bool


@dataclass
class ExerciseState:
    """§3.2: per (user, exercise), the attempt pointer xpbank owns."""

    completed: int = 0  # the number of the last completed attempt
    mastered_before: bool = False  # a finalized attempt reached 80 % (§3.3 no farming)
    open: OpenAttempt | None = None
    last: CompletedAttempt | None = None
    seen: set[str] = field(default_factory=set)  # submission ids processed

    @property
    def current(self) -> int:
        """The open attempt's number, or the one the next event would open."""
        return self.open.number if self.open else self.completed + 1


def minutes_for(credited_ms: int) -> int:
    """§3.4.3: s < 20 -> 0; 20 <= s < 30 -> 1; otherwise floor(s / 60 + 0.5)."""
    seconds = Fraction(credited_ms, 1000)
    if seconds < 20:
        return 0
    if seconds < 30:
        return 1
    return math.floor(seconds / 60 + Fraction(1, 2))


def exercise_xp(base: int, attempt: int, correct: int, total: int, mastered_before: bool) -> int:
    """§3.3: floor(base x factor x bonus + 0.5) at accuracy >= 80, else 0; 0 once mastered."""
    if mastered_before or total <= 0 or 100 * correct < 80 * total:
        return 0
    bonus = Fraction(5, 4) if correct == total else Fraction(1)
    return math.floor(base * ATTEMPT_FACTOR.get(attempt, Fraction(0)) * bonus + Fraction(1, 2))
