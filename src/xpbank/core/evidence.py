"""A banking decision's evidence as an output (`BankingDecided` on xp.decisions.v1), so
readers answer "why this XP?" without the worker's tables. Published after every
accepted mastery, and again when a heartbeat that counts for it (event time up to its T)
reaches a resource its explanation shows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from xpbank.contract.events import CourseUpserted
from xpbank.contract.outputs import BankingDecided
from xpbank.contract.times import to_micros
from xpbank.core.banking import MasteryRef, PairState
from xpbank.core.explain import explain_banking
from xpbank.core.ids import banking_decided_id
from xpbank.core.rules import Rules


def banking_decided(
    user: str, exercise: str, ref: MasteryRef, course: CourseUpserted | None, pairs: Mapping[str, PairState],
    cause: str, rules: Rules,
) -> BankingDecided:
    """The evidence of the (user, exercise) decision as it stands; `cause` is the id of
    the event that made it change (identity of this version of the evidence)."""
    explanation = explain_banking(user, exercise, ref, course, pairs)
    return BankingDecided(
        id=banking_decided_id(user, exercise, rules.generation, cause),
        generation=rules.generation,
        **explanation.model_dump(),
    )


def changes_evidence(ref: MasteryRef | None, event_times_us: Iterable[int]) -> bool:
    """Time spent counts for a mastery's evidence only up to its T."""
    return ref is not None and any(t <= to_micros(ref.eventTime) for t in event_times_us)
