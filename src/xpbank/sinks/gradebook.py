"""The OneRoster gradebook write-back as pure functions (SPEC §3.7): which facts become
assessment results, their sourcedIds and line items from the operator's templates, the
PUT body merged into the result the server holds, and whether that result is already as
new as the fact.

A PUT replaces the whole result, so the body starts from the held result: every field
and metadata key xpbank does not own survives (the replaced system kept the learner's
`nice_timeSpent` there), and xpbank's own keys are set from the fact."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from xpbank.config import ConfigError
from xpbank.contract.outputs import XpFact
from xpbank.contract.times import format_time
from xpbank.sinks.templates import Template

RESULTS_PATH = "/ims/oneroster/gradebook/v1p2/assessmentResults/"
KINDS = ("banked", "exercise")
XP_REASONS = {"banked": "Banked XP", "exercise": "Exercise XP"}
OWNED_FIELDS = frozenset({"sourcedId", "status", "student", "assessmentLineItem", "scoreDate", "scoreStatus", "metadata"})
SERVER_FIELDS = frozenset({"dateLastModified"})  # kept by the server: never sent back


@dataclass(frozen=True)
class Naming:
    """How results and line items are named. `banked` / `exercise` None: the default
    sourcedId, uuid5 of `xpbank:result:{factId}` (one result per fact, whatever its
    revision or generation)."""

    line_item: Template
    banked: Template | None = None
    exercise: Template | None = None

    @classmethod
    def parse(cls, line_item: str, banked: str, exercise: str) -> Naming:
        item = Template.parse("XPBANK_ONEROSTER_LINE_ITEM_ID", line_item, ("resource",))
        item.require("resource", why="every resource's results would share one line item")
        result_fields = ("user", "resource", "lineItem")
        named = {}
        for kind, variable, text, fields in (("banked", "XPBANK_ONEROSTER_RESULT_ID", banked, result_fields),
                                             ("exercise", "XPBANK_ONEROSTER_EXERCISE_RESULT_ID", exercise,
                                              (*result_fields, "attempt"))):
            if not text:
                named[kind] = None
                continue
            template = Template.parse(variable, text, fields)
            template.require("user", why="every learner's result for a resource would be one result")
            template.require("resource", "lineItem", why="a learner's results for every resource would be one result")
            if kind == "exercise":
                template.require("attempt", why="a learner's attempts at an exercise would be one result")
            named[kind] = template
        return cls(item, named["banked"], named["exercise"])

    def line_item_id(self, fact: XpFact) -> str:
        return self.line_item.render({"resource": fact.resourceSourcedId})

    def result_id(self, fact: XpFact) -> str:
        template = self.banked if fact.kind == "banked" else self.exercise
        if template is None:
            return str(uuid.uuid5(uuid.NAMESPACE_URL, f"xpbank:result:{fact.factId}"))
        return template.render({"user": fact.userSourcedId, "resource": fact.resourceSourcedId,
                                "lineItem": self.line_item_id(fact), "attempt": fact.attempt})


def parse_kinds(text: str) -> frozenset[str]:
    kinds = frozenset(k.strip() for k in text.split(",") if k.strip())
    if not kinds or not kinds <= set(KINDS):
        raise ConfigError(f"XPBANK_ONEROSTER_KINDS={text!r}: use banked, exercise or banked,exercise")
    return kinds


def result_url(base_url: str, sourced_id: str) -> str:
    return base_url.rstrip("/") + RESULTS_PATH + quote(sourced_id, safe="")


def owned_metadata(fact: XpFact) -> dict:
    """The metadata keys xpbank sets (SPEC §3.7's five, and where the XP came from)."""
    keys = {"xp": fact.xp, "xpReason": XP_REASONS[fact.kind], "factId": fact.factId, "generation": fact.generation,
            "revision": fact.revision, "courseSourcedId": fact.courseSourcedId}
    if fact.kind == "exercise":
        return keys | {"attempt": fact.attempt}
    return keys | {"exerciseSourcedId": fact.exerciseSourcedId}


def result_body(fact: XpFact, naming: Naming, held: Mapping | None) -> dict:
    """The PUT body for `fact`, over the result the server holds (None: none yet)."""
    held = held if isinstance(held, Mapping) else {}
    metadata = held.get("metadata")
    kept = {k: v for k, v in held.items() if k not in OWNED_FIELDS and k not in SERVER_FIELDS}
    return {"assessmentResult": {
        **kept,
        "sourcedId": naming.result_id(fact),
        "status": "active",
        "assessmentLineItem": {"sourcedId": naming.line_item_id(fact)},
        "student": {"sourcedId": fact.userSourcedId},
        "scoreDate": format_time(fact.eventTime),
        "scoreStatus": "fully graded",
        "metadata": {**(metadata if isinstance(metadata, Mapping) else {}), **owned_metadata(fact)},
    }}


def already_written(held: Mapping | None, fact: XpFact) -> bool:
    """The held result was written from this fact at this or a greater (generation,
    revision): writing it again would change nothing, or put an older fact back."""
    metadata = held.get("metadata") if isinstance(held, Mapping) else None
    if not isinstance(metadata, Mapping) or metadata.get("factId") != fact.factId:
        return False
    generation, revision = metadata.get("generation"), metadata.get("revision")
    if type(generation) is not int or type(revision) is not int:
        return False
    return (generation, revision) >= (fact.generation, fact.revision)


def latest_per_result(facts: list[tuple[str, XpFact]]) -> dict[str, XpFact]:
    """One fact per result sourcedId, the greatest (generation, revision), later ones
    winning ties: a batch writes each result once."""
    latest: dict[str, XpFact] = {}
    for sourced_id, fact in facts:
        held = latest.get(sourced_id)
        if held is None or (fact.generation, fact.revision) >= (held.generation, held.revision):
            latest[sourced_id] = fact
    return latest
