"""Comparing the product's outputs with the second oracle (tests/oracle/), as JSON
values: what differs, in words a failing test can print."""

from __future__ import annotations

from collections import Counter
from dataclasses import fields

from tests.oracle import Limits, Oracle, views

SPEC_ATTEMPT_EVENTS = ("AttemptOpened", "AttemptCompleted", "AttemptDiscarded")  # AttemptProgressed is not in SPEC


def limits_of(rules, identifier_rules: bool | None = None) -> Limits:
    """The oracle's settings from the product's `Rules` (numbers only). SPEC §2.5 applies
    when the product has its settings (issue 21), or when asked."""
    names = {f.name for f in fields(Limits)} - {"identifier_rules"}
    known = {name: getattr(rules, name) for name in names if hasattr(rules, name)}
    if identifier_rules is None:
        identifier_rules = hasattr(rules, "max_id_length")
    return Limits(**known, identifier_rules=identifier_rules)


def current(facts: list[dict]) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for fact in facts:
        held = latest.get(fact["factId"])
        if held is None or (fact["generation"], fact["revision"]) > (held["generation"], held["revision"]):
            latest[fact["factId"]] = fact
    return latest


def letter_key(letter: dict, with_time: bool = True) -> tuple:
    """A dead letter without its `detail` (the product's words), and without its
    `timestamp` unless `with_time` (a record line without one is stamped "now", twice)."""
    return tuple(sorted((k, str(v)) for k, v in letter.items() if k != "detail" and (with_time or k != "timestamp")))


def attempt_event(value: dict) -> dict:
    return {k: v for k, v in value.items() if k != "id"}  # the identity of an attempt event is the product's


def differences(produced: list[tuple[str, dict]], oracle: Oracle, letter_times: bool = True) -> list[str]:
    """Every way the product's outputs (topic, JSON value), in the order `simulate`
    gave them, differ from the oracle's: current facts (revision included: the same
    arrival order), dead letters (but their detail), awards, SPEC's attempt events
    (but their id) and published masteries, in order."""
    found = []
    by_topic: dict[str, list[dict]] = {}
    for topic, value in produced:
        by_topic.setdefault(topic, []).append(value)
    want, got = views.current_facts(oracle), current(by_topic.get("xp.facts.v1", []))
    found += [f"fact {fid}: product {got.get(fid)} oracle {want.get(fid)}"
              for fid in sorted(set(want) | set(got)) if want.get(fid) != got.get(fid)]
    letters = Counter(letter_key(d, letter_times) for d in by_topic.get("xp.dead-letters.v1", []))
    expected = Counter(letter_key(d, letter_times) for d in views.values(oracle, "xp.dead-letters.v1"))
    found += [f"dead letter only from the product: {dict(k)}" for k in (letters - expected).elements()]
    found += [f"dead letter only from the oracle: {dict(k)}" for k in (expected - letters).elements()]
    attempts = [attempt_event(v) for v in by_topic.get("xp.attempts.v1", []) if v["type"] in SPEC_ATTEMPT_EVENTS]
    for topic, product_values in (("xp.banked.v1", by_topic.get("xp.banked.v1", [])), ("xp.attempts.v1", attempts),
                                  ("learning.mastery.v1", by_topic.get("learning.mastery.v1", []))):
        oracle_values = views.values(oracle, topic)
        for n, (a, b) in enumerate(zip(product_values, oracle_values)):
            if a != b:
                found.append(f"{topic} #{n}: product {a} oracle {b}")
                break
        if len(product_values) != len(oracle_values):
            found.append(f"{topic}: {len(product_values)} from the product, {len(oracle_values)} from the oracle")
    return found
