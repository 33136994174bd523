"""The one wiring module of the Quix engine: the Application, its topics and its store,
and the function every learner record goes through.

The learner topics (caliper, submissions, mastery and the re-key topic) share one store
registered under a fixed stream id, so a learner's state is one set of keys whatever
topic its records came on. Quix keeps writes in the checkpoint's cache and, at a
checkpoint, produces one changelog record per changed key, flushes the producer (our
outputs with it), commits the offsets (in one Kafka transaction under exactly-once) and
writes RocksDB. On restore it applies only changelog records of committed offsets, so a
crash before a checkpoint processes the same records again against the same state.

At least once, a record's outputs wait in the partition's outbox (runtime/outbox.py),
written with the checkpoint, and are published once it is committed: records processed
again after a crash can meet each other in another order than the first time, and
outputs published before their state would then be contradicted. A checkpoint is
forced within 10 ms of held outputs (runtime/outbox.py has the policy, shared with Faust). Exactly once, outputs go into the checkpoint's
Kafka transaction and no outbox is needed."""

from __future__ import annotations

import logging
from collections import Counter

from quixstreams import message_context
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models import TopicAdmin, TopicManager

from xpbank.config import Settings
from xpbank.contract.topics import CALIPER, CURRICULUM, MASTERY, SUBMISSIONS, TOPICS
from xpbank.kafka.connection import librdkafka_config
from xpbank.observe.latency import Histogram
from xpbank.processing.upcast import ReadThrough, quix_v1
from xpbank.runtime import outbox
from xpbank.runtime.curriculum_view import CurriculumView
from xpbank.runtime.outbox import Item
from xpbank.runtime.records import from_millis
from xpbank.runtime.quix import internals
from xpbank.runtime.quix.internals import HookedApplication, NamedTopicManager
from xpbank.runtime.engines import QUIX_STORE
from xpbank.runtime.topology import app_id, changelog_topic
from xpbank.runtime.unit import ProcessingUnit

log = logging.getLogger("xpbank")
RAW = {"key_deserializer": "bytes", "value_deserializer": "bytes", "key_serializer": "bytes", "value_serializer": "bytes"}
# A record the producer has not delivered within this fails, and with it the flush that
# waits for it: the engine then starts again with new clients (worker.Running) and its
# outbox publishes what was not acknowledged. librdkafka's default is 5 minutes, and its
# flush waits without a bound: after a broker restart a producer was seen holding its
# records, the broker up and answering everyone else, for those 5 minutes (CI, 2026-12;
# docs/decisions.md 16). A minute is also the exactly-once producer's bound already
# (transaction.timeout.ms).
PRODUCE_TIMEOUT_MS = 60_000


def quix_application(settings: Settings, group: str, on_processing_error) -> HookedApplication:
    connection = ConnectionConfig.from_librdkafka_dict(librdkafka_config(settings))
    # fetch.wait.max.ms: an offset query waits behind the consumer's long poll on the
    # same connection, and Quix asks for every assigned partition's watermarks one by
    # one on every assignment: 500 ms each (the default) made a rebalance take 10 s
    consumer_extra = {"session.timeout.ms": settings.session_timeout_seconds * 1000, "heartbeat.interval.ms": 1000,
                      "fetch.wait.max.ms": 50}
    producer_extra = {"linger.ms": 5, "message.timeout.ms": PRODUCE_TIMEOUT_MS}
    if settings.instance_id:  # static membership: a restart takes its partitions back at once
        consumer_extra["group.instance.id"] = settings.instance_id
        # a stable transactional id fences a crashed predecessor's open transaction at once
        producer_extra["transactional.id"] = f"{group}-{settings.instance_id}"
    return HookedApplication(
        broker_address=connection,
        consumer_group=group,
        auto_offset_reset="earliest",
        commit_interval=1.0,
        processing_guarantee=settings.processing_guarantee,
        state_dir=str(settings.data_dir / group),
        consumer_extra_config=consumer_extra,
        producer_extra_config=producer_extra,
        topic_manager=NamedTopicManager(
            topic_admin=TopicAdmin(broker_address=connection), consumer_group=group,
            timeout=30, create_timeout=60, auto_create_topics=False),
        on_processing_error=on_processing_error,
        loglevel=settings.framework_loglevel,
        broker_availability_timeout=0,  # a broker away is waited for, as Faust does
        consumer_poll_timeout=0.005,  # an idle poll ends soon, and held outputs leave at once
    )


class QuixEngine:
    def __init__(self, settings: Settings, curriculum: CurriculumView, metrics: Counter | None = None,
                 latency: Histogram | None = None) -> None:
        self.settings = settings
        self.curriculum = curriculum
        self.group = app_id(settings)
        self.assigned: set[tuple[str, int]] = set()
        self.rebalancing = True  # until the first assignment
        self.ever_assigned = False
        self.unit = ProcessingUnit(settings, curriculum, keeps_ledger=False,
                                   holds_outputs=settings.processing_guarantee == "at-least-once",
                                   metrics=metrics, latency=latency)
        self.metrics, self.latency, self.outbox = self.unit.metrics, self.unit.latency, self.unit.outbox
        self.idle = False  # the last poll brought no record
        self.unobserved: list[int | None] = []  # timestamps of outputs produced, published with the next commit
        self.app = quix_application(settings, self.group, self.on_processing_error)
        self.app.hooks = self
        self.outputs = {spec.name: spec.full_name(settings.topic_prefix) for spec in TOPICS}
        self._wire()

    def _wire(self) -> None:
        """One store for the four learner topics (not concat(): it would buffer and align
        by time, and name the changelog after the set of topics)."""
        names = self.outputs
        learner_topics = [self.app.topic(names[t], **RAW) for t in (CALIPER, SUBMISSIONS, MASTERY)]
        learner_topics.append(self.app.topic(self.unit.rekeyed_name, **RAW))
        dataframes = [self.app.dataframe(topic) for topic in learner_topics]
        self.context = dataframes[0].processing_context
        self.producer = self.context.producer
        self._commit_checkpoint = internals.route_checkpoints(self.context, self.commit_checkpoint)
        self.context.dataframe_registry.register_stream_id(QUIX_STORE, [t.name for t in learner_topics])
        TopicManager.ensure_topics_copartitioned(*learner_topics)
        self.context.state_manager.register_store(
            stream_id=QUIX_STORE, changelog_config=TopicManager.derive_topic_config(learner_topics))
        assert self.app.changelog_topic_names()[0] == changelog_topic(self.settings, QUIX_STORE)
        for dataframe in dataframes:
            dataframe.update(self.process, metadata=True)
        self.app.dataframe(self.app.topic(names[CURRICULUM], **RAW)).update(self.process_curriculum, metadata=True)

    def port(self, partition: int):
        """The partition's store: the checkpoint's transaction (the unit keeps the
        decoded values between checkpoints and writes them back into it at the commit)."""
        return self.context.checkpoint.get_store_transaction(stream_id=QUIX_STORE, partition=partition)

    # ---- processing (the main thread) -------------------------------------------------
    def process(self, value, key, timestamp_ms, headers) -> None:
        self.idle = False
        context = message_context()
        if context.partition in self.outbox.unrecovered:  # assigned in the poll that brought this record
            self.publish_outboxes_left([context.partition])
        step = self.unit.learner(self.port(context.partition), context.topic, context.partition, context.offset, key,
                                 value, headers, from_millis(timestamp_ms))
        produce = self.producer.produce
        for user, origin in step.copies:  # to the learner's own partition
            produce(topic=self.unit.rekeyed_name, key=user, value=value, timestamp=timestamp_ms, headers=origin)
        self._produce(step.outputs)  # exactly once: in the checkpoint's transaction
        self.unit.keep(step, context.topic, context.partition, context.offset)  # into the checkpoint's cache

    def process_curriculum(self, value, key, timestamp_ms, headers) -> None:
        """Dead letters and counts only: the curriculum view keeps the courses."""
        context = message_context()
        self._produce(self.unit.curriculum_record(context.topic, context.partition, context.offset, key, value,
                                                  from_millis(timestamp_ms)))

    def _produce(self, items: list[Item]) -> None:
        produce = self.producer.produce
        for topic, key, value, ts in items:
            produce(topic=topic, key=key, value=value, timestamp=ts)
            self.unobserved.append(ts)

    # ---- the outbox (at least once) ------------------------------------------------------
    def commit_checkpoint(self, force: bool = False, revoking: bool = False) -> None:
        """Quix's commit, with the outboxes (runtime/outbox.py): written into the
        checkpoint, published once it is committed, and emptied with the next one (at
        once before a revocation or a stop, so that the next owner finds nothing to
        publish again)."""
        context, box = self.context, self.outbox
        force = force or box.due(idle=self.idle)
        if force or context.checkpoint.expired():
            self.unit.write_back(self.port)
            for partition, value in box.writes().items():
                outbox.write(self.port(partition), partition, value)
        before = context.checkpoint
        self._commit_checkpoint(force=force, revoking=revoking)
        if context.checkpoint is before:  # not committed
            return
        if self.unobserved:  # flushed (and committed, exactly once)
            self.latency.observe_since(self.unobserved)
            self.unobserved = []
        held = box.durable()
        if not held:
            return
        self._send([item for items in held.values() for item in items])
        box.published(held)
        if revoking or self.app.stopping:
            for partition, value in box.writes().items():
                outbox.write(self.port(partition), partition, value)
            self._commit_checkpoint(force=True, revoking=revoking)
            box.durable()

    def publish_outboxes_left(self, partitions: list[int] | None = None) -> None:
        """Publish what a stop left in the outboxes of the partitions just assigned
        (the same outputs: same ids and values), before their next record."""
        partitions = sorted(self.outbox.unrecovered) if partitions is None else partitions
        for partition in partitions:
            self.outbox.recovered(partition)
            port = self.port(partition)
            items = outbox.read(ReadThrough(port, quix_v1(port)), partition)
            if items:
                self._send(items)
                self.outbox.published([partition])
                log.warning("published the outbox a stop left on partition %d: %d outputs", partition, len(items))

    def _send(self, items: list[Item]) -> None:
        produce = self.producer.produce
        for topic, key, value, ts in items:
            produce(topic=topic, key=key, value=value, timestamp=ts)
        self.producer.flush()
        self.latency.observe_since(ts for _, _, _, ts in items)

    def on_processing_error(self, exc, row, logger) -> bool:
        """`handle_record` never raises on input: anything here is a bug. Stop the worker
        (a supervisor restarts it) rather than skip a record."""
        logger.exception("processing failed: %s", exc)
        self.metrics["processing_errors"] += 1
        return False

    # ---- the application's hooks (internals.Hooks) ----------------------------------------
    def on_poll(self) -> None:
        if self.outbox.unrecovered:  # state recovered (the loop polls only then)
            self.publish_outboxes_left()
        self.idle = True  # until a record comes: then held outputs need not wait

    def on_assigning(self) -> None:
        self.rebalancing = True

    # (health is written here and read by the API's thread)
    def on_assigned(self, topic_partitions) -> None:
        inputs = {self.outputs[CALIPER], self.outputs[SUBMISSIONS], self.outputs[MASTERY], self.unit.rekeyed_name}
        self.assigned = {(tp.topic, tp.partition) for tp in topic_partitions if tp.topic in inputs}
        # Quix recovers each assigned partition's store afresh: its kept values are read again
        # (a revoked one's were written back by the revocation's checkpoint)
        self.unit.forget({partition for _, partition in self.assigned})
        self.outbox.unrecovered |= {partition for _, partition in self.assigned}
        self.rebalancing = False
        self.metrics["rebalances"] += 1
        self.ever_assigned = True
        log.info("assigned partitions=%s", ",".join(f"{t}:{p}" for t, p in sorted(self.assigned)))

    def on_revoked(self, partitions: set[int], lost: bool) -> None:
        """Lost partitions' held outputs are dropped: their records are processed again
        by the next owner (revoked ones are published by the commit that follows)."""
        self.rebalancing = True
        self.assigned = set()
        if lost:  # (revoked ones' state is written back by the revocation's checkpoint, next)
            self.unit.forget(partitions)
            self.outbox.forget(partitions)
        else:  # the revocation's checkpoint, next, still writes and publishes them
            self.outbox.unrecovered -= partitions

    @property
    def recovering(self) -> bool:
        return bool(self.context.state_manager.recovery_required)

    def ready(self) -> bool:
        return self.ever_assigned and not self.rebalancing and not self.recovering and self.curriculum.ready_now()

    # ---- caught up (replay) --------------------------------------------------------------
    def caught_up(self) -> bool:
        """Every assigned learner partition read to its end and nothing left to send.
        Positions, not committed offsets: under exactly-once a partition ends with a
        transaction marker the committed offset never passes. Watermarks as the last
        fetch saw them: asking the broker waits behind the consumer's long poll."""
        if not self.ready() or not self.assigned:
            return False
        if internals.unacknowledged(self.producer):
            return False
        from confluent_kafka import TopicPartition

        consumer = self.app.kafka_consumer
        partitions = [TopicPartition(t, p) for t, p in sorted(self.assigned)]
        committed = None
        for tp in consumer.position(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), cached=True)
            if high < 0:
                return False
            position = tp.offset
            if position < 0:  # nothing read in this session: the committed offset, else the log start
                committed = committed or {(c.topic, c.partition): c.offset for c in consumer.committed(partitions, timeout=5)}
                position = committed.get((tp.topic, tp.partition), -1)
                position = low if position < 0 else position
            if position < high:
                return False
        return True
