"""The one topic registry (SPEC §1): names, keys, cleanup policies, what each topic
keeps (its broker configs), value models, and which topic each output goes to.

The input topics are the system of record (replays rebuild state from them), so they
keep everything; output topics keep records for `XPBANK_OUTPUT_RETENTION_DAYS`;
compacted topics keep the latest value per key."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from xpbank.contract.events import CaliperEnvelope, CourseUpserted, ExerciseMastered, TimeSpentEvent
from xpbank.contract.identifiers import escaped
from xpbank.contract.outputs import (
    AttemptCompleted, AttemptDiscarded, AttemptOpened, AttemptProgressed, BankedXpAwarded, BankingDecided, DeadLetter,
    SinkDeadLetter, XpFact,
)

CALIPER = "learning.caliper.v1"
SUBMISSIONS = "learning.submissions.v1"
MASTERY = "learning.mastery.v1"
CURRICULUM = "learning.curriculum.v1"
BANKED = "xp.banked.v1"
ATTEMPTS = "xp.attempts.v1"
FACTS = "xp.facts.v1"
DEAD_LETTERS = "xp.dead-letters.v1"
DECISIONS = "xp.decisions.v1"
SINK_DEAD_LETTERS = "xp.sink-dead-letters.v1"
SINKS = ("oneroster", "caliper")  # the write-back sinks (SPEC §3.7): `xpbank sink NAME`


# What a topic keeps, and so which configs it gets (see `topic_configs`).
KEEP_ALL = "everything"  # the system of record: never deleted by time or size
KEEP_OUTPUT = "output retention"  # XPBANK_OUTPUT_RETENTION_DAYS (default: for ever)
KEEP_LATEST = "latest per key"  # compacted
DAY_MS = 86_400_000
# A consumer up to a day behind still reads every revision of a fact before compaction
# keeps only the latest (consumers need only the latest: they keep the greatest revision).
FACTS_MIN_COMPACTION_LAG_MS = DAY_MS


@dataclass(frozen=True)
class TopicSpec:
    name: str
    direction: str  # "in", "out" or "in+out"
    key: str
    cleanup: str
    values: tuple[type[BaseModel], ...]
    kind: str | None = None  # how the codec decodes it, for input topics
    keeps: str = KEEP_ALL
    min_compaction_lag_ms: int = 0

    def full_name(self, prefix: str = "") -> str:
        return prefix + self.name


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(CALIPER, "in", "any (routed by user)", "delete", (CaliperEnvelope, TimeSpentEvent), "caliper"),
    TopicSpec(SUBMISSIONS, "in", "any (routed by user)", "delete", (), "submissions"),
    TopicSpec(MASTERY, "in+out", "user sourcedId", "delete", (ExerciseMastered,), "mastery"),
    TopicSpec(CURRICULUM, "in", "course sourcedId", "compact", (CourseUpserted,), "curriculum", KEEP_LATEST),
    TopicSpec(BANKED, "out", "user sourcedId", "delete", (BankedXpAwarded,), keeps=KEEP_OUTPUT),
    TopicSpec(ATTEMPTS, "out", "user sourcedId", "delete",
              (AttemptOpened, AttemptProgressed, AttemptCompleted, AttemptDiscarded), keeps=KEEP_OUTPUT),
    TopicSpec(FACTS, "out", "factId", "compact", (XpFact,), keeps=KEEP_LATEST,
              min_compaction_lag_ms=FACTS_MIN_COMPACTION_LAG_MS),
    TopicSpec(DEAD_LETTERS, "out", "original key", "delete", (DeadLetter,), keeps=KEEP_OUTPUT),
    TopicSpec(DECISIONS, "out", "user:exercise", "compact", (BankingDecided,), keeps=KEEP_LATEST),
    TopicSpec(SINK_DEAD_LETTERS, "out", "factId", "delete", (SinkDeadLetter,), keeps=KEEP_OUTPUT),
)
BY_NAME = {spec.name: spec for spec in TOPICS}
INPUT_KINDS = {spec.name: spec.kind for spec in TOPICS if spec.kind}
INPUTS = tuple(spec.name for spec in TOPICS if spec.direction.startswith("in"))


def retention_ms(days: int) -> int:
    """`XPBANK_OUTPUT_RETENTION_DAYS` as `retention.ms` (-1: for ever)."""
    return -1 if days < 0 else days * DAY_MS


def topic_configs(keeps: str, output_retention_days: int = -1, min_compaction_lag_ms: int = 0) -> dict[str, str]:
    """The broker configs of a topic that keeps `keeps` (set explicitly, whatever the
    broker's defaults: a cluster's default retention would otherwise delete inputs)."""
    if keeps == KEEP_LATEST:
        return {"cleanup.policy": "compact", "min.compaction.lag.ms": str(min_compaction_lag_ms)}
    days = -1 if keeps == KEEP_ALL else output_retention_days
    return {"cleanup.policy": "delete", "retention.ms": str(retention_ms(days)), "retention.bytes": "-1"}


@dataclass(frozen=True)
class TopicSetup:
    """A topic as xpbank creates it on the broker."""

    name: str  # as on the broker (prefixed)
    partitions: int
    replication: int
    configs: tuple[tuple[str, str], ...]
    role: str  # "input" (replays read it: must keep everything), "output", "internal", "changelog"

    @property
    def config(self) -> dict[str, str]:
        return dict(self.configs)


def registry_setups(prefix: str, partitions: int, replication: int, output_retention_days: int) -> list[TopicSetup]:
    """Every registry topic as it must be on the broker."""
    return [
        TopicSetup(
            spec.full_name(prefix), partitions, replication,
            tuple(topic_configs(spec.keeps, output_retention_days, spec.min_compaction_lag_ms).items()),
            "input" if spec.direction.startswith("in") else "output",
        )
        for spec in TOPICS
    ]


def base_name(full_name: str, prefix: str = "") -> str:
    """The registry name of a (possibly prefixed) topic; unknown names pass through."""
    return full_name[len(prefix) :] if prefix and full_name.startswith(prefix) else full_name


def sink_group(prefix: str, sink: str) -> str:
    """The consumer group of a write-back sink: its committed offsets are its progress
    (the web page reads its lag from the broker)."""
    return f"{prefix}xpbank-sink-{sink}"


def caliper_sent_topic(prefix: str) -> str:
    """The Caliper sink's store (internal, compacted, partitioned as `xp.facts.v1`): per
    fact, what the analytics server holds and the event in flight."""
    return f"{prefix}xpbank-sink-caliper-sent"


def caliper_sent_setup(prefix: str, partitions: int, replication: int) -> TopicSetup:
    """The store as created: compacted, never deleted by time (it is the sink's memory)."""
    return TopicSetup(caliper_sent_topic(prefix), partitions, replication, (("cleanup.policy", "compact"),), "internal")


def decision_key(user: str, exercise: str) -> str:
    """The compaction key of a decision's evidence: one per (user, exercise), each
    `escaped` (SPEC §2.5) so that no two pairs share a key."""
    return f"{escaped(user)}:{escaped(exercise)}"


def route(output: BaseModel) -> tuple[str, str]:
    """The topic and record key of an output value."""
    if isinstance(output, XpFact):
        return FACTS, output.factId
    if isinstance(output, BankedXpAwarded):
        return BANKED, output.userSourcedId
    if isinstance(output, AttemptOpened | AttemptProgressed | AttemptCompleted | AttemptDiscarded):
        return ATTEMPTS, output.userSourcedId
    if isinstance(output, BankingDecided):
        return DECISIONS, decision_key(output.userSourcedId, output.exerciseSourcedId)
    if isinstance(output, ExerciseMastered):
        return MASTERY, output.userSourcedId
    raise TypeError(f"no topic for {type(output).__name__}")
