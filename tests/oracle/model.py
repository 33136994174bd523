"""The rules of SPEC §3, applied to records in arrival order: time accounting (§3.1),
attempts (§3.2), exercise XP and mastery (§3.3), banking (§3.4), outputs (§3.5) and
lateness and bad input (§3.6). Plain dicts and dataclasses, one method per rule; the
state is what the SPEC says xpbank knows, nothing more."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson

from tests.oracle import curriculum, outputs
from tests.oracle.attempts import AttemptRules
from tests.oracle.decode import decode
from tests.oracle.events import CourseDelete, CourseUpsert, Ignored, Mastery, Refused, Submission, TimeSpent
from tests.oracle.fields import Limits
from tests.oracle.records import MASTERY, Record
from tests.oracle.state import Decision, ExerciseState, minutes_for

FACTS, BANKED, DEAD_LETTERS = "xp.facts.v1", "xp.banked.v1", "xp.dead-letters.v1"


class Oracle(AttemptRules):
    def __init__(self, limits: Limits = Limits(), prefix: str = "") -> None:
        self.limits, self.prefix = limits, prefix
        self.escape = limits.identifier_rules
        self.courses: dict[str, CourseUpsert] = {}
        self.watermarks: dict[str, datetime] = {}  # §3.6, per user
        self.time_spent: dict[tuple[str, str], dict[str, tuple[datetime, int]]] = {}  # §3.1: id -> (time, ms)
        self.decisions: dict[tuple[str, str], Decision] = {}  # §3.4, per (user, resource)
        self.exercises: dict[tuple[str, str], ExerciseState] = {}  # §3.2, per (user, exercise)
        self.masteries: dict[tuple[str, str], Mastery] = {}  # the last accepted mastery (explain)
        self.outputs: list[tuple[str, dict]] = []  # (topic, value) in the order decided

    # ---- records -------------------------------------------------------------------

    def feed(self, record: Record) -> None:
        """One input record, then (§3.4.8) the masteries it made xpbank publish."""
        pending = [record]
        while pending:
            current = pending.pop(0)
            pending += [self.published(mastery, current) for mastery in self.apply(current)]

    def apply(self, record: Record) -> list[dict]:
        published: list[dict] = []
        for event in decode(record, self.limits):
            if isinstance(event, Refused):
                self.dead_letter(record, event)
            elif isinstance(event, TimeSpent):
                self.on_time_spent(event, record)
            elif isinstance(event, Submission):
                published += self.on_submission(event, record)
            elif isinstance(event, Mastery):
                self.on_mastery(event, record)
            elif isinstance(event, CourseUpsert):
                self.courses[event.course] = event  # §2.4: a later record replaces it
            elif isinstance(event, CourseDelete):
                self.courses.pop(event.course, None)
            else:
                assert isinstance(event, Ignored)
        return published

    def published(self, mastery: dict, cause: Record) -> Record:
        """§3.4.8: an ExerciseMastered xpbank published, read back as a mastery record."""
        return Record(MASTERY, mastery["userSourcedId"], orjson.dumps(mastery), cause.timestamp, cause.offset,
                      self.prefix + MASTERY)

    def emit(self, topic: str, value: dict) -> None:
        self.outputs.append((topic, value))

    def dead_letter(self, record: Record, refused: Refused) -> None:
        """§3.6: every rejected record or event goes to the dead letters with its reason."""
        text, encoding = outputs.payload(record.value)
        self.emit(DEAD_LETTERS, {
            "reason": refused.reason, "topic": record.topic_name, "partition": None, "offset": record.offset,
            "key": record.key, "timestamp": outputs.utc_text(record.timestamp), "eventId": refused.event_id,
            "payload": text, "payloadEncoding": encoding,
        })

    # ---- §3.1 time accounting, §3.6 lateness, §3.4.6 late events ------------------------

    def on_time_spent(self, event: TimeSpent, record: Record) -> None:
        mark = self.watermarks.get(event.user)
        if mark is not None and event.event_time < mark - timedelta(seconds=self.limits.lateness_seconds):
            return self.dead_letter(record, Refused("too_late", event.id))
        accepted = self.time_spent.setdefault((event.user, event.resource), {})
        uuid_key = event.id.lower()  # a uuid's hex digits name the same uuid in either case
        if uuid_key in accepted:
            return  # §3.1: an id already accepted is ignored
        accepted[uuid_key] = (event.event_time, event.credited_ms)
        self.watermarks[event.user] = max(mark, event.event_time) if mark is not None else event.event_time
        decision = self.decisions.get((event.user, event.resource))
        if decision is not None and event.event_time <= decision.T:
            self.redecide(event.user, event.resource)  # §3.4.6: re-decided with the same T

    def credited_up_to(self, user: str, resource: str, t: datetime) -> int:
        """§3.4.2: credited ms of the (user, resource) events with eventTime <= T."""
        return sum(ms for when, ms in self.time_spent.get((user, resource), {}).values() if when <= t)

    # ---- §3.4 banking ----------------------------------------------------------------

    def on_mastery(self, mastery: Mastery, record: Record) -> None:
        course = self.courses.get(mastery.course)
        if course is None:
            return self.dead_letter(record, Refused("unknown_course", mastery.id))
        found = curriculum.window(course.units, mastery.exercise)
        if found is None:
            return self.dead_letter(record, Refused("unknown_exercise", mastery.id))
        self.masteries[(mastery.user, mastery.exercise)] = mastery
        for placed in filter(curriculum.is_eligible, found[1]):
            held = self.decisions.get((mastery.user, placed.id))
            if held is not None and held.xp > 0:
                continue  # §3.4.5: decided once
            self.decisions[(mastery.user, placed.id)] = Decision(
                mastery.event_time, mastery, course.subject, placed.kind, placed.xp,
                revision=held.revision if held else 0)
            self.redecide(mastery.user, placed.id)

    def redecide(self, user: str, resource: str) -> None:
        """§3.4.2-4, §3.4.6: award min(minutes up to T, xp) when more than awarded so far."""
        decision = self.decisions[(user, resource)]
        credited = self.credited_up_to(user, resource, decision.T)
        minutes = minutes_for(credited)
        award = min(minutes, decision.cap)
        if award <= decision.xp:
            return  # awards never decrease
        delta, decision.xp, decision.revision = award - decision.xp, award, decision.revision + 1
        self.emit_award(user, resource, decision, credited, minutes, delta)

    def emit_award(self, user: str, resource: str, decision: Decision, credited: int, minutes: int, delta: int) -> None:
        """§3.5: a BankedXpAwarded and the banked fact, per awarded resource and revision."""
        m, generation, escape = decision.mastery, self.limits.generation, self.escape
        award_id = outputs.bank_id(user, resource, escape)
        self.emit(BANKED, {
            "id": outputs.bank_output_id(user, resource, generation, decision.revision, escape),
            "type": "BankedXpAwarded", "awardId": award_id, "generation": generation,
            "revision": decision.revision, "userSourcedId": user, "email": m.email, "courseSourcedId": m.course,
            "resourceSourcedId": resource, "resourceKind": decision.kind, "exerciseSourcedId": m.exercise,
            "attempt": m.attempt, "masteryEventId": m.id, "activeSeconds": credited / 1000, "minutes": minutes,
            "expectedXp": decision.cap, "xp": decision.xp, "deltaXp": delta, "eventTime": outputs.utc_text(decision.T),
        })
        self.emit(FACTS, outputs.fact(award_id, "banked", generation, decision.revision, user, m.email, m.course,
                                      decision.subject, resource, m.exercise, m.attempt, decision.xp, decision.T, m.id))
