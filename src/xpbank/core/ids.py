"""Deterministic identities: every output id is uuid5(NAMESPACE_URL, identity).

The sourcedIds in a fact id or an identity are `escaped` first (SPEC §2.5: `%` and `:`
percent-encoded), so different (user, exercise) tuples never give one id; ids without
those characters keep the form they always had. Event ids (`cause`) stay as they are."""

from __future__ import annotations

import uuid

from xpbank.contract.identifiers import escaped


def output_id(identity: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, identity)}"


def mastery_id(user: str, exercise: str, attempt: int) -> str:
    return output_id(f"xpbank:mastery:{escaped(user)}:{escaped(exercise)}:{attempt}")


def exercise_fact_id(user: str, exercise: str, attempt: int) -> str:
    return f"exercise:{escaped(user)}:{escaped(exercise)}:{attempt}"


def bank_award_id(user: str, resource: str) -> str:
    """Both the BankedXpAwarded `awardId` and the banked fact's `factId`."""
    return f"bank:{escaped(user)}:{escaped(resource)}"


def bank_output_id(user: str, resource: str, generation: int, revision: int) -> str:
    return output_id(f"xpbank:bank:{escaped(user)}:{escaped(resource)}:{generation}:{revision}")


def attempt_output_id(kind: str, user: str, exercise: str, attempt: int, generation: int, cause: str) -> str:
    """Opened/Discarded can happen more than once for one number (reset reuses it),
    so their identity includes the id of the submission that caused them."""
    return output_id(f"xpbank:{kind}:{escaped(user)}:{escaped(exercise)}:{attempt}:{generation}:{cause}")


def attempt_completed_id(user: str, exercise: str, attempt: int, generation: int) -> str:
    return output_id(f"xpbank:attempt-completed:{escaped(user)}:{escaped(exercise)}:{attempt}:{generation}")


def banking_decided_id(user: str, exercise: str, generation: int, cause: str) -> str:
    return output_id(f"xpbank:banking-decided:{escaped(user)}:{escaped(exercise)}:{generation}:{cause}")
