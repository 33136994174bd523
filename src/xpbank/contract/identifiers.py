"""SPEC §2.5: identifiers and limits. Every id a record carries is at most
`XPBANK_MAX_ID_LENGTH` characters with no control character, and an envelope carries at
most `XPBANK_MAX_EVENTS_PER_ENVELOPE` events. Where ids are combined (fact ids, output
ids, record keys, store keys, Redis keys) each component is escaped first, so that
different id tuples never give the same result.

One wording for every breach: the gateway's 4xx and the worker's `schema_violation`
dead letter say the same `<field>: <problem>`."""

from __future__ import annotations

import re

MAX_ID_LENGTH = 512  # XPBANK_MAX_ID_LENGTH's default
MAX_EVENTS_PER_ENVELOPE = 1000  # XPBANK_MAX_EVENTS_PER_ENVELOPE's default
_CONTROL = re.compile("[\x00-\x1f\x7f]")
# the identifiers of a Caliper event (SPEC §2.5), by their path in the event
CALIPER_ID_PATHS = (("id",), ("actor", "id"), ("object", "activity", "id"), ("object", "course", "id"))


def id_problem(value: str, limit: int = MAX_ID_LENGTH) -> str | None:
    """What is wrong with an identifier, or None."""
    if len(value) > limit:
        return f"longer than XPBANK_MAX_ID_LENGTH={limit} characters ({len(value)})"
    if value.isascii() and value.isprintable():  # the common case, at C speed
        return None
    found = _CONTROL.search(value)
    if found is not None:
        return (f"holds a control character (U+{ord(found.group()):04X} at {found.start()}); "
                "ids may not hold U+0000-U+001F or U+007F")
    return None


def too_many_events(count: int, limit: int = MAX_EVENTS_PER_ENVELOPE) -> str | None:
    if count > limit:
        return f"data: {count} events, over XPBANK_MAX_EVENTS_PER_ENVELOPE={limit}; send them in several envelopes"
    return None


def caliper_id_problem(event: object, limit: int = MAX_ID_LENGTH) -> str | None:
    """`<field>: <problem>` for the first identifier of a Caliper event (a dict, or any
    object with `get`, such as the gateway's lazily parsed one) that breaks the limits;
    fields that are absent or not strings are the models' business."""
    for path in CALIPER_ID_PATHS:
        value = event
        for name in path:
            getter = getattr(value, "get", None)
            if getter is None or isinstance(value, str | bytes):
                value = None
                break
            value = getter(name)
        if type(value) is str and (problem := id_problem(value, limit)) is not None:
            return f"{'.'.join(path)}: {problem}"
    return None


# ---- combining ids --------------------------------------------------------------------


def escaped(component: str) -> str:
    """A sourcedId as a component of a fact id, an output id's identity or a record key
    (SPEC §2.5): `%` and `:` percent-encoded. An id without them is unchanged."""
    if "%" in component or ":" in component:
        return component.replace("%", "%25").replace(":", "%3A")
    return component


def redis_part(component: str) -> str:
    """An id as a component of a Redis key: `%`, `:`, `{` and `}` percent-encoded, so keys
    never meet and a Redis Cluster hash tag (`{...}`) never comes from a sourcedId."""
    if "%" in component or ":" in component or "{" in component or "}" in component:
        return (component.replace("%", "%25").replace(":", "%3A").replace("{", "%7B").replace("}", "%7D"))
    return component


def store_part(component: str) -> str:
    """An id as a component of a state store key (joined with U+001F): U+001B and U+001F
    escaped (as U+001B U+001B and U+001B U+001E), so a component never holds the
    separator. Valid ids hold neither (no control characters): their keys are unchanged."""
    if "\x1b" in component or "\x1f" in component:
        return component.replace("\x1b", "\x1b\x1b").replace("\x1f", "\x1b\x1e")
    return component
