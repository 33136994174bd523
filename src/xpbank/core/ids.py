"""Deterministic identities: every output id is uuid5(NAMESPACE_URL, identity)."""

from __future__ import annotations

import uuid


def output_id(identity: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, identity)}"


def mastery_id(user: str, exercise: str, attempt: int) -> str:
    return output_id(f"xpbank:mastery:{user}:{exercise}:{attempt}")


def exercise_fact_id(user: str, exercise: str, attempt: int) -> str:
    return f"exercise:{user}:{exercise}:{attempt}"


def bank_award_id(user: str, resource: str) -> str:
    """Both the BankedXpAwarded `awardId` and the banked fact's `factId`."""
    return f"bank:{user}:{resource}"


def bank_output_id(user: str, resource: str, generation: int, revision: int) -> str:
    return output_id(f"xpbank:bank:{user}:{resource}:{generation}:{revision}")


def attempt_output_id(kind: str, user: str, exercise: str, attempt: int, generation: int, cause: str) -> str:
    """Opened/Discarded can happen more than once for one number (reset reuses it),
    so their identity includes the id of the submission that caused them."""
    return output_id(f"xpbank:{kind}:{user}:{exercise}:{attempt}:{generation}:{cause}")
