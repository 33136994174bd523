"""The one topic registry (SPEC §1): names, keys, cleanup policies and value models,
and which topic each output goes to."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from xpbank.events import CaliperEnvelope, CourseUpserted, ExerciseMastered, TimeSpentEvent
from xpbank.outputs import AttemptCompleted, AttemptDiscarded, AttemptOpened, BankedXpAwarded, DeadLetter, XpFact

CALIPER = "learning.caliper.v1"
SUBMISSIONS = "learning.submissions.v1"
MASTERY = "learning.mastery.v1"
CURRICULUM = "learning.curriculum.v1"
BANKED = "xp.banked.v1"
ATTEMPTS = "xp.attempts.v1"
FACTS = "xp.facts.v1"
DEAD_LETTERS = "xp.dead-letters.v1"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    direction: str  # "in", "out" or "in+out"
    key: str
    cleanup: str
    values: tuple[type[BaseModel], ...]
    kind: str | None = None  # how the codec decodes it, for input topics

    def full_name(self, prefix: str = "") -> str:
        return prefix + self.name


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(CALIPER, "in", "any (routed by user)", "delete", (CaliperEnvelope, TimeSpentEvent), "caliper"),
    TopicSpec(SUBMISSIONS, "in", "any (routed by user)", "delete", (), "submissions"),
    TopicSpec(MASTERY, "in+out", "user sourcedId", "delete", (ExerciseMastered,), "mastery"),
    TopicSpec(CURRICULUM, "in", "course sourcedId", "compact", (CourseUpserted,), "curriculum"),
    TopicSpec(BANKED, "out", "user sourcedId", "delete", (BankedXpAwarded,)),
    TopicSpec(ATTEMPTS, "out", "user sourcedId", "delete", (AttemptOpened, AttemptCompleted, AttemptDiscarded)),
    TopicSpec(FACTS, "out", "factId", "compact", (XpFact,)),
    TopicSpec(DEAD_LETTERS, "out", "original key", "delete", (DeadLetter,)),
)
BY_NAME = {spec.name: spec for spec in TOPICS}
INPUT_KINDS = {spec.name: spec.kind for spec in TOPICS if spec.kind}


def base_name(full_name: str, prefix: str = "") -> str:
    """The registry name of a (possibly prefixed) topic; unknown names pass through."""
    return full_name[len(prefix) :] if prefix and full_name.startswith(prefix) else full_name


def route(output: BaseModel) -> tuple[str, str]:
    """The topic and record key of an output value."""
    if isinstance(output, XpFact):
        return FACTS, output.factId
    if isinstance(output, BankedXpAwarded):
        return BANKED, output.userSourcedId
    if isinstance(output, AttemptOpened | AttemptCompleted | AttemptDiscarded):
        return ATTEMPTS, output.userSourcedId
    if isinstance(output, ExerciseMastered):
        return MASTERY, output.userSourcedId
    raise TypeError(f"no topic for {type(output).__name__}")
