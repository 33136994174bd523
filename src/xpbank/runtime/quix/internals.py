"""Every touch point on quixstreams' private names, in one place. Each was read from the
pinned version below (pyproject.toml pins it) and is covered by
tests/unit/test_quix_internals.py, which fails when the library changes under it; no
other module of src/ names a private attribute of quixstreams or confluent_kafka.

| touch point | read from | why |
|---|---|---|
| `TopicManager._internal_name`, `._consumer_group` | quixstreams/models/topics/manager.py | changelog topics named like xpbank's others |
| `Application._process_message` | quixstreams/app.py | a hook once per turn of the loop, after state recovery |
| `Application._on_assign`, `._on_revoke`, `._on_lost` | quixstreams/app.py | rebalance hooks for health and the outbox (Quix has no public ones) |
| `Application._run_tracker.running` | quixstreams/app.py | whether this checkpoint is the last one of a stop |
| `Application._consumer` | quixstreams/app.py | positions and watermarks for "caught up" |
| `Application._topic_manager.changelog_topics_list` | quixstreams/app.py | the store's changelog is the topic xpbank created |
| `ProcessingContext.commit_checkpoint`, replaced on the instance | quixstreams/processing/context.py, app.py | the loop, the rebalance and the stop commit through it: the outbox's one place |
| `InternalProducer._producer._producer` | quixstreams/internal_producer.py, kafka/producer.py | how many records are not yet acknowledged |
"""

from __future__ import annotations

from typing import Protocol

from quixstreams import Application
from quixstreams.models import TopicManager

QUIXSTREAMS_VERSION = "3.28.1"


class Hooks(Protocol):
    def on_poll(self) -> None: ...
    def on_assigning(self) -> None: ...
    def on_assigned(self, topic_partitions) -> None: ...
    def on_revoked(self, partitions: set[int], lost: bool) -> None: ...


class NamedTopicManager(TopicManager):
    """Quix's internal topics named `{group}-{store}-changelog`, like xpbank's others."""

    def _internal_name(self, topic_type, topic_name, suffix) -> str:
        return f"{self._consumer_group}-{topic_name}-{topic_type}"


class HookedApplication(Application):
    """Quix's Application calling `hooks` on each turn of its loop and around rebalances."""

    hooks: Hooks

    def _process_message(self, dataframe_composed):
        self.hooks.on_poll()  # the loop runs this only once state is recovered
        super()._process_message(dataframe_composed)

    def _on_assign(self, consumer, topic_partitions):
        self.hooks.on_assigning()
        super()._on_assign(consumer, topic_partitions)
        self.hooks.on_assigned(topic_partitions)

    def _on_revoke(self, consumer, topic_partitions):
        self.hooks.on_revoked({tp.partition for tp in topic_partitions}, False)
        super()._on_revoke(consumer, topic_partitions)

    def _on_lost(self, consumer, topic_partitions):
        self.hooks.on_revoked({tp.partition for tp in topic_partitions}, True)
        super()._on_lost(consumer, topic_partitions)

    @property
    def stopping(self) -> bool:
        """A stop was asked for: the checkpoint being committed is the last one."""
        return not self._run_tracker.running

    @property
    def kafka_consumer(self):
        """The confluent_kafka consumer under Quix's (positions, watermarks, committed)."""
        return self._consumer

    def changelog_topic_names(self) -> list[str]:
        return [topic.name for topic in self._topic_manager.changelog_topics_list]


def route_checkpoints(context, commit):
    """Every checkpoint Quix commits (its loop, a revocation, a stop) goes through `commit`
    instead; returns Quix's own commit for `commit` to call."""
    original = context.commit_checkpoint
    context.commit_checkpoint = commit
    return original


def unacknowledged(producer) -> int:
    """Records a Quix InternalProducer handed to librdkafka and not yet acknowledged."""
    return len(producer._producer._producer)
