"""The topics a deployment needs: the registry's, and the names a generation uses on
the broker (its consumer group, its internal re-key topic, its table changelogs). Kept
apart from the engines so the command line can create and check these topics without
importing one."""

from __future__ import annotations

import asyncio
import logging

from xpbank.config import Settings
from xpbank.kafka.admin import Admin, FiniteRetention, TopicSetupError, converge, create_missing
from xpbank.kafka.views import finite_retention
from xpbank.runtime.engines import engine_of
from xpbank.contract.topics import (
    CALIPER, CURRICULUM, KEEP_ALL, MASTERY, SUBMISSIONS, TopicSetup, caliper_sent_setup, registry_setups,
    replica_configs, topic_configs,
)

COMPACTED = (("cleanup.policy", "compact"),)


def app_id(settings: Settings) -> str:
    """Consumer group and state names: a replay with a new generation starts fresh, and
    so does a switch of engine (their state is kept differently)."""
    return f"{settings.topic_prefix}xpbank-{engine_of(settings).group_infix}g{settings.rules.generation}"


def rekeyed_topic(settings: Settings) -> str:
    """The internal topic that carries records to their learner's partition."""
    return f"{app_id(settings)}-rekeyed"


def changelog_topic(settings: Settings, table: str) -> str:
    return f"{app_id(settings)}-{table}-changelog"


def changelogs(settings: Settings) -> list[str]:
    """The engine's changelog topics (Faust: one per table; Quix: one store)."""
    return [changelog_topic(settings, store) for store in engine_of(settings).stores]


def changelogs_present(settings: Settings, stores) -> bool:
    """Whether a changelog topic of any of `stores` exists on the broker (state an earlier
    version wrote, to be read through: processing/upcast.py)."""
    names = {changelog_topic(settings, store) for store in stores}
    metadata = asyncio.run(Admin(settings).metadata())
    return bool(names & set(metadata.topics))


def input_topics(settings: Settings) -> list[str]:
    """Every topic the worker group consumes (its own masteries and re-keyed copies too)."""
    names = [settings.topic_prefix + t for t in (CALIPER, SUBMISSIONS, MASTERY, CURRICULUM)]
    return names + [rekeyed_topic(settings)]


def internal_setups(settings: Settings) -> list[TopicSetup]:
    """The generation's own topics. Re-keyed copies wait there to be processed, so the
    topic keeps everything (its records carry their original, possibly old, timestamps);
    changelogs are compacted and never deleted by time."""
    p, r = settings.partitions, settings.replication_factor
    replicas = tuple(replica_configs(r).items())
    rekeyed = TopicSetup(rekeyed_topic(settings), p, r, tuple(topic_configs(KEEP_ALL).items()) + replicas, "internal")
    return [rekeyed] + [TopicSetup(name, p, r, COMPACTED + replicas, "changelog") for name in changelogs(settings)]


def sink_setups(settings: Settings) -> list[TopicSetup]:
    """The Caliper sink's store of what it sent: compacted, never deleted by time, with
    the partitions of `xp.facts.v1` (a fact's record goes to its fact's partition)."""
    return [caliper_sent_setup(settings.topic_prefix, settings.partitions, settings.replication_factor)]


def all_setups(settings: Settings) -> list[TopicSetup]:
    """Every topic of the registry, of the current generation and of the write-back sinks."""
    registry = registry_setups(settings.topic_prefix, settings.partitions, settings.replication_factor,
                               settings.output_retention_days)
    return registry + internal_setups(settings) + sink_setups(settings)


async def create_topics(settings: Settings) -> list[str]:
    """Every topic of the registry and of the current generation, created or converged
    to its configs (`xpbank topics create`); returns the names created now. A topic
    whose partitions or replicas differ is an error: xpbank never changes those."""
    created, _, mismatched = await converge(settings, all_setups(settings))
    if mismatched:
        raise TopicSetupError("; ".join(map(str, mismatched)) + " (xpbank never changes partitions or replicas: "
                              "delete the topic or set XPBANK_PARTITIONS / XPBANK_REPLICATION_FACTOR to match)")
    return created


RETENTION_WARNING_SECONDS = 3600.0
log = logging.getLogger("xpbank")


def prepare_topics(settings: Settings) -> list[str]:
    """Create missing topics, then the same check as `xpbank topics check`. Refuses an
    input topic that deletes records unless XPBANK_ALLOW_FINITE_RETENTION=1; returns the
    warnings to repeat (every hour) when allowed."""
    setups = all_setups(settings)
    drifts = asyncio.run(create_missing(settings, setups))
    risky = finite_retention(setups, drifts)
    for drift in drifts:
        if drift not in risky:
            log.warning("topic differs from the registry: %s (xpbank topics create aligns it)", drift)
    if risky and not settings.allow_finite_retention:
        raise FiniteRetention(
            "input topics delete records, so a replay would rebuild state from part of the history: "
            + "; ".join(map(str, risky))
            + ". Run `xpbank topics create` to keep everything, or set XPBANK_ALLOW_FINITE_RETENTION=1.")
    warn_finite_retention(risky)
    return [str(d) for d in risky]


def warn_finite_retention(risky) -> None:
    """Said at start and every RETENTION_WARNING_SECONDS while a worker runs so."""
    for drift in risky:
        log.warning("input topic deletes records (XPBANK_ALLOW_FINITE_RETENTION=1): %s", drift)
