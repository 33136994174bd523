"""What a core step returns besides its new state."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rejection:
    """An event that fails a check: the shell turns it into a DeadLetter."""

    reason: str
    detail: str
    event_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    """Outputs to publish, rejected events, and counters for metrics."""

    outputs: tuple = ()
    rejections: tuple[Rejection, ...] = ()
    counts: tuple[tuple[str, int], ...] = field(default=())
    # (user, exercise, event time µs, event id): accepted time that may change that
    # exercise's banking evidence (core.evidence decides, once the shell read the mastery)
    evidence: tuple[tuple[str, str, int, str], ...] = ()

    def __add__(self, other: Outcome) -> Outcome:
        return Outcome(self.outputs + other.outputs, self.rejections + other.rejections, self.counts + other.counts,
                       self.evidence + other.evidence)


NOTHING = Outcome()


def rejected(reason: str, detail: str, event_id: str | None) -> Outcome:
    return Outcome(rejections=(Rejection(reason, detail, event_id),))


def counted(name: str, amount: int = 1) -> Outcome:
    return Outcome(counts=((name, amount),))
