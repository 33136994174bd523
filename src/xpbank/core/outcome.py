"""What a core step returns besides its new state."""

from __future__ import annotations

from typing import NamedTuple


class Rejection(NamedTuple):
    """An event that fails a check: the shell turns it into a DeadLetter."""

    reason: str
    detail: str
    event_id: str | None = None


class Outcome(NamedTuple):
    """Outputs to publish, rejected events, and counters for metrics. `a + b` is the
    outcome of both (each part concatenated), not a longer tuple."""

    outputs: tuple = ()
    rejections: tuple[Rejection, ...] = ()
    counts: tuple[tuple[str, int], ...] = ()
    # (user, exercise, event time µs, event id): accepted time that may change that
    # exercise's banking evidence (core.evidence decides, once the shell read the mastery)
    evidence: tuple[tuple[str, str, int, str], ...] = ()

    def __add__(self, other: Outcome) -> Outcome:  # type: ignore[override]
        return Outcome(self.outputs + other.outputs, self.rejections + other.rejections, self.counts + other.counts,
                       self.evidence + other.evidence)


NOTHING = Outcome()


def rejected(reason: str, detail: str, event_id: str | None) -> Outcome:
    return Outcome(rejections=(Rejection(reason, detail, event_id),))


def counted(name: str, amount: int = 1) -> Outcome:
    return Outcome(counts=((name, amount),))


_ACCEPTED: dict[int, Outcome] = {0: NOTHING}


def accepted_only(heartbeats: int) -> Outcome:
    """The outcome of heartbeats accepted and nothing else, one shared per number (an
    Outcome is immutable; a record holds at most SPEC §2.5's events)."""
    outcome = _ACCEPTED.get(heartbeats)
    if outcome is None:
        outcome = _ACCEPTED[heartbeats] = Outcome(counts=(("time_spent_accepted", heartbeats),))
    return outcome
