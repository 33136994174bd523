"""The Caliper write-back as pure functions (SPEC §3.7): what a fact's change sends, and
the Timeback-profile `ActivityEvent` with `xpEarned` that carries it.

Per factId the sink remembers what the analytics server holds (`Sent`: the greatest
(generation, revision) processed and the xp delivered). A fact that is not newer sends
nothing; a newer one sends its xp minus what is held, so the sum of `xpEarned` over a
learner's events is the learner's XP whatever the revisions, redeliveries and replays.
A change of 0 sends nothing but is remembered (a replay's facts then supersede)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from xpbank.config import ConfigError
from xpbank.contract.outputs import XpFact
from xpbank.contract.times import format_time
from xpbank.core.ids import output_id
from xpbank.sinks.templates import Template

CALIPER_V1P2 = "http://purl.imsglobal.org/ctx/caliper/v1p2"
APP_NAME = "xpbank"
# Timeback's subject enum; a course subject is matched case-insensitively, with the
# replaced system's slugs (social-studies, humanities, ela); anything else is "None".
TIMEBACK_SUBJECTS = ("Science", "Math", "Reading", "Language", "Social Studies", "None")
SUBJECT_ALIASES = {"social-studies": "Social Studies", "social_studies": "Social Studies",
                   "humanities": "Social Studies", "ela": "Reading", "english language arts": "Reading",
                   "mathematics": "Math", "maths": "Math"}
_SUBJECTS = {s.lower(): s for s in TIMEBACK_SUBJECTS} | SUBJECT_ALIASES


@dataclass(frozen=True)
class Sent:
    """What the analytics server holds for one factId: `xp` delivered in all, after the
    fact (generation, revision) processed last."""

    generation: int
    revision: int
    xp: int


def change(sent: Sent | None, fact: XpFact) -> int | None:
    """The xpEarned to send for `fact` (0: nothing to send), or None when the fact is not
    newer than what was processed (a redelivery, or an older generation's revision)."""
    if sent is not None and (fact.generation, fact.revision) <= (sent.generation, sent.revision):
        return None
    return fact.xp - (sent.xp if sent else 0)


def timeback_subject(subject: str | None) -> str:
    return _SUBJECTS.get((subject or "").strip().lower(), "None")


def event_id(fact: XpFact) -> str:
    return output_id(f"xpbank:xp-earned:{fact.factId}:{fact.generation}:{fact.revision}")


@dataclass(frozen=True)
class Identity:
    """The IRIs of an event: the actor (its last path segment is the learner's
    sourcedId, percent-encoded) and the activity (the resource)."""

    actor: Template
    activity: Template

    @classmethod
    def parse(cls, actor: str, activity: str) -> Identity:
        actor_t = Template.parse("XPBANK_CALIPER_ACTOR_ID", actor, ("user",))
        if not actor.endswith("/{user}") or "://" not in actor:
            raise ConfigError(f"XPBANK_CALIPER_ACTOR_ID={actor!r}: an absolute IRI ending in /{{user}} "
                              "(the actor's last path segment names the learner)")
        activity_t = Template.parse("XPBANK_CALIPER_ACTIVITY_ID", activity, ("resource",))
        activity_t.require("resource", why="every resource's events would name one activity")
        if ":" not in activity:
            raise ConfigError(f"XPBANK_CALIPER_ACTIVITY_ID={activity!r}: an absolute IRI (scheme:...)")
        return cls(actor_t, activity_t)

    def actor_id(self, user: str) -> str:
        return self.actor.render({"user": quote(user, safe="")})

    def activity_id(self, resource: str) -> str:
        return self.activity.render({"resource": quote(resource, safe="")})


def xp_earned_event(fact: XpFact, value: int, identity: Identity) -> dict:
    """The Timeback `ActivityEvent` (action Completed) reporting `value` XP earned on the
    fact's resource: one fact, one event, so exercise and banked XP never share one."""
    activity = identity.activity_id(fact.resourceSourcedId)
    actor = {"id": identity.actor_id(fact.userSourcedId), "type": "TimebackUser"}
    if fact.email:
        actor["email"] = fact.email
    return {
        "@context": CALIPER_V1P2,
        "id": event_id(fact),
        "type": "ActivityEvent",
        "profile": "TimebackProfile",
        "action": "Completed",
        "eventTime": format_time(fact.eventTime),
        "actor": actor,
        "object": {"id": activity, "type": "TimebackActivityContext", "subject": timeback_subject(fact.subject),
                   "app": {"name": APP_NAME}, "activity": {"id": activity, "name": fact.resourceSourcedId},
                   "course": {"name": fact.courseSourcedId}},
        "generated": {"id": output_id(f"xpbank:xp-earned-metrics:{fact.factId}:{fact.generation}:{fact.revision}"),
                      "type": "TimebackActivityMetricsCollection", "items": [{"type": "xpEarned", "value": value}]},
        "extensions": {"xpbankFactId": fact.factId, "kind": fact.kind, "generation": fact.generation,
                       "revision": fact.revision, "xp": fact.xp},
    }


def envelope(events: list[dict], sensor: str, send_time: str) -> dict:
    """A Caliper 1.2 envelope."""
    return {"sensor": sensor, "sendTime": send_time, "dataVersion": CALIPER_V1P2, "data": events}


def batches(items: list, size: int) -> list[list]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def xp_earned(event: dict) -> int:
    """The xpEarned an event carries."""
    return sum(item["value"] for item in event["generated"]["items"] if item["type"] == "xpEarned")


