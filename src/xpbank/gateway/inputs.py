"""Submissions, masteries and courses sent over HTTP: validated against the contract's
models with SPEC §2.5's limits (422 with the reasons; an array of more than
XPBANK_MAX_EVENTS_PER_ENVELOPE documents: 413), keyed as SPEC §1 says. The value sent on is
the document as it came (the worker decodes it again), so nothing the sender wrote is lost."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from xpbank.contract.events import CourseUpserted, ExerciseMastered, Submission
from xpbank.contract.identifiers import id_problem, too_many_events
from xpbank.contract.topics import CURRICULUM, MASTERY, SUBMISSIONS
from xpbank.gateway.caliper import Limits
from xpbank.gateway.problems import Refused

SUBMISSION = TypeAdapter(Submission)
MOST_ERRORS = 20  # reasons listed in a 422


@dataclass(frozen=True)
class Keyed:
    """One record: key, value (None: a tombstone) and the event time it carries."""

    topic: str
    key: bytes
    value: bytes | None
    event_time: datetime | None


def submissions(body: bytes, limits: Limits = Limits()) -> list[Keyed]:
    """One submission event or a JSON array of them, keyed by learner."""
    return [Keyed(SUBMISSIONS, e.userSourcedId.encode(), raw, e.eventTime)
            for e, raw in _validated(body, SUBMISSION.validate_python, "submission", limits)]


def masteries(body: bytes, limits: Limits = Limits()) -> list[Keyed]:
    """One ExerciseMastered or a JSON array of them, keyed by learner."""
    return [Keyed(MASTERY, e.userSourcedId.encode(), raw, e.eventTime)
            for e, raw in _validated(body, ExerciseMastered.model_validate, "mastery", limits)]


def course(body: bytes, course_id: str, limits: Limits = Limits()) -> Keyed:
    """A CourseUpserted for the course the path names, keyed by it."""
    doc = _json(body)
    if not isinstance(doc, dict):
        raise Refused(400, "a course is one JSON object (CourseUpserted)")
    [(event, raw)] = _validated(body, CourseUpserted.model_validate, "course", limits, [doc])
    if event.courseSourcedId != course_id:
        raise Refused(422, f"courseSourcedId {event.courseSourcedId[:200]!r} in the body differs from "
                           f"{course_id[:200]!r} in the path")
    return Keyed(CURRICULUM, course_id.encode(), raw, None)


def course_deleted(course_id: str, limits: Limits = Limits()) -> Keyed:
    if (problem := id_problem(course_id, limits.max_id_length)) is not None:
        raise Refused(422, f"courseSourcedId (the path): {problem}")
    return Keyed(CURRICULUM, course_id.encode(), None, None)


def _json(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refused(400, f"malformed JSON: {exc}") from None


def _validated(body: bytes, validate, what: str, limits: Limits,
               docs: list | None = None) -> list[tuple[BaseModel, bytes]]:
    """(model, value bytes) per document; a single document keeps its bytes as sent."""
    single = docs is not None
    if docs is None:
        doc = _json(body)
        single = not isinstance(doc, list)
        docs = [doc] if single else doc
        if not docs:
            raise Refused(400, f"an empty array: send one {what} or an array of them")
        if (problem := too_many_events(len(docs), limits.max_events)) is not None:
            raise Refused(413, problem.replace("data: ", "the array: ").replace("envelopes", "requests"))
    context = {"max_id_length": limits.max_id_length}
    good, errors = [], []
    for n, doc in enumerate(docs):
        try:
            good.append((validate(doc, context=context), body if single else orjson.dumps(doc)))
        except ValidationError as exc:
            prefix = "" if single else f"[{n}]."
            errors += [f"{prefix}{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()]
    if errors:
        more = " (all reasons in errors)" if len(errors) > 1 else ""
        raise Refused(422, f"the {what} is not valid: {errors[0]}{more}", {"errors": errors[:MOST_ERRORS]})
    return good
