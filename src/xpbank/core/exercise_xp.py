"""Exercise XP (SPEC §3.3)."""

from __future__ import annotations

import math

MASTERY_ACCURACY = 80.0
ATTEMPT_FACTORS = {1: 1.0, 2: 0.5, 3: 0.25}
PERFECT_BONUS = 1.25


def round_half_up(x: float) -> int:
    """`floor(x + 0.5)`: 2.5 -> 3 (Python's round() would give 2)."""
    return math.floor(x + 0.5)


def exercise_xp(base: int, attempt: int, accuracy: float, mastered_before: bool) -> int:
    if accuracy < MASTERY_ACCURACY or mastered_before:
        return 0
    factor = ATTEMPT_FACTORS.get(attempt, 0.0)
    bonus = PERFECT_BONUS if accuracy >= 100 else 1.0
    return round_half_up(base * factor * bonus)


def accuracy_of(correct: int, total: int) -> float:
    return 100.0 * correct / total if total > 0 else 0.0
