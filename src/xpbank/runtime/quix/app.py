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
forced within 10 ms of held outputs. Exactly once, outputs go into the checkpoint's
Kafka transaction and no outbox is needed."""

from __future__ import annotations

import logging
import time
from collections import Counter

from quixstreams import message_context
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models import TopicAdmin, TopicManager

from xpbank.config import Settings
from xpbank.contract import codec
from xpbank.contract.topics import CALIPER, CURRICULUM, MASTERY, SUBMISSIONS, TOPICS
from xpbank.kafka.connection import librdkafka_config
from xpbank.processing.handlers import handle_record
from xpbank.processing.state import BufferedStore
from xpbank.read.latency import Histogram
from xpbank.runtime import outbox
from xpbank.runtime.curriculum_view import CurriculumView
from xpbank.runtime.failpoints import Failpoint
from xpbank.runtime.records import from_millis, input_record, learner_record, observe, origin_headers
from xpbank.runtime.quix import internals
from xpbank.runtime.quix.internals import HookedApplication, NamedTopicManager
from xpbank.runtime.quix.state import QuixStore
from xpbank.runtime.engines import QUIX_STORE
from xpbank.runtime.topology import app_id, changelog_topic, rekeyed_topic

log = logging.getLogger("xpbank")
OUTPUTS_WITHIN = 0.01  # seconds: held outputs force a checkpoint this soon (at once when the consumer idles)
OUTBOX_PREFIX = b"\x00\x00\x00\x00"  # the outbox's key, OUTBOX_KEY, starts with NUL: no learner's key does
RAW = {"key_deserializer": "bytes", "value_deserializer": "bytes", "key_serializer": "bytes", "value_serializer": "bytes"}


class QuixEngine:
    def __init__(self, settings: Settings, curriculum: CurriculumView, metrics: Counter | None = None) -> None:
        self.settings = settings
        self.rules = settings.rules
        self.curriculum = curriculum
        self.metrics = Counter() if metrics is None else metrics
        self.group = app_id(settings)
        self.assigned: set[tuple[str, int]] = set()
        self.rebalancing = True  # until the first assignment
        self.ever_assigned = False
        self.prefix = settings.topic_prefix
        self.rekeyed_name = rekeyed_topic(settings)
        self.failpoint = Failpoint()
        self.use_outbox = settings.processing_guarantee == "at-least-once"
        self.held: dict[int, list] = {}  # partition -> outputs waiting for the checkpoint
        self.held_since: float | None = None
        self.idle = False  # the last poll brought no record
        self.unrecovered: set[int] = set()  # assigned partitions whose outbox is not looked at yet
        self.latency = Histogram()  # record timestamp -> outputs published
        self.unobserved: list[int | None] = []  # timestamps of outputs produced, published with the next commit
        connection = ConnectionConfig.from_librdkafka_dict(librdkafka_config(settings))
        # fetch.wait.max.ms: an offset query waits behind the consumer's long poll on the
        # same connection, and Quix asks for every assigned partition's watermarks one by
        # one on every assignment: 500 ms each (the default) made a rebalance take 10 s
        consumer_extra = {"session.timeout.ms": settings.session_timeout_seconds * 1000, "heartbeat.interval.ms": 1000,
                          "fetch.wait.max.ms": 50}
        producer_extra = {"linger.ms": 5}
        if settings.instance_id:  # static membership: a restart takes its partitions back at once
            consumer_extra["group.instance.id"] = settings.instance_id
            # a stable transactional id fences a crashed predecessor's open transaction at once
            producer_extra["transactional.id"] = f"{self.group}-{settings.instance_id}"
        self.app = HookedApplication(
            broker_address=connection,
            consumer_group=self.group,
            auto_offset_reset="earliest",
            commit_interval=1.0,
            processing_guarantee=settings.processing_guarantee,
            state_dir=str(settings.data_dir / self.group),
            consumer_extra_config=consumer_extra,
            producer_extra_config=producer_extra,
            topic_manager=NamedTopicManager(
                topic_admin=TopicAdmin(broker_address=connection), consumer_group=self.group,
                timeout=30, create_timeout=60, auto_create_topics=False),
            on_processing_error=self.on_processing_error,
            loglevel=settings.framework_loglevel,
            broker_availability_timeout=0,  # a broker away is waited for, as Faust does
            consumer_poll_timeout=0.005,  # an idle poll ends soon, and held outputs leave at once
        )
        self.app.hooks = self
        names = {spec.name: spec.full_name(self.prefix) for spec in TOPICS}
        self.outputs = {name: full for name, full in names.items()}
        learner_topics = [self.app.topic(names[t], **RAW) for t in (CALIPER, SUBMISSIONS, MASTERY)]
        learner_topics.append(self.app.topic(self.rekeyed_name, **RAW))
        dataframes = [self.app.dataframe(topic) for topic in learner_topics]
        self.context = dataframes[0].processing_context
        self.producer = self.context.producer
        self._commit_checkpoint = internals.route_checkpoints(self.context, self.commit_checkpoint)
        # one store for the four learner topics (not concat(): it would buffer and align
        # by time, and name the changelog after the set of topics)
        self.context.dataframe_registry.register_stream_id(QUIX_STORE, [t.name for t in learner_topics])
        TopicManager.ensure_topics_copartitioned(*learner_topics)
        self.context.state_manager.register_store(
            stream_id=QUIX_STORE, changelog_config=TopicManager.derive_topic_config(learner_topics))
        assert self.app.changelog_topic_names()[0] == changelog_topic(settings, QUIX_STORE)
        for dataframe in dataframes:
            dataframe.update(self.process, metadata=True)
        self.app.dataframe(self.app.topic(names[CURRICULUM], **RAW)).update(self.process_curriculum, metadata=True)

    # ---- processing (the main thread) -------------------------------------------------
    def process(self, value, key, timestamp_ms, headers) -> None:
        self.idle = False
        context = message_context()
        if context.partition in self.unrecovered:  # assigned in the poll that brought this record
            self.publish_outboxes_left([context.partition])
        record, owner, is_copy = learner_record(
            context.topic, context.partition, context.offset, key, value, headers, from_millis(timestamp_ms),
            self.prefix, self.rekeyed_name, self.settings.partitions)
        transaction = self.context.checkpoint.get_store_transaction(stream_id=QUIX_STORE, partition=context.partition)
        buffered = BufferedStore(QuixStore(transaction, self.curriculum))
        handled = handle_record(buffered, record, self.rules, owner=owner, rekeyed=is_copy)
        produce = self.producer.produce
        for user in sorted(handled.foreign_users):  # to the learner's own partition
            produce(topic=self.rekeyed_name, key=user.encode(), value=value, timestamp=timestamp_ms,
                    headers=origin_headers(record))
        if not handled.outputs:
            pass
        elif self.use_outbox:
            self.held.setdefault(context.partition, []).extend(outbox.pending(handled.outputs, self.prefix))
            if self.held_since is None:
                self.held_since = time.monotonic()
        else:
            self.publish(handled.outputs)
        buffered.flush()  # into the checkpoint's cache: written with the offsets
        observe(self.metrics, record, handled, rekeyed=is_copy, owner=owner)

    def process_curriculum(self, value, key, timestamp_ms, headers) -> None:
        """Dead letters and counts only: the curriculum view keeps the courses."""
        context = message_context()
        record = input_record(context.topic, context.partition, context.offset, key, value, from_millis(timestamp_ms),
                              self.prefix)
        handled = handle_record(QuixStore(None, self.curriculum), record, self.rules)
        self.publish(handled.outputs)
        observe(self.metrics, record, handled)

    def publish(self, outputs) -> None:
        for out in outputs:
            ts = None if out.timestamp is None else int(out.timestamp.timestamp() * 1000)
            self.producer.produce(topic=self.outputs[out.topic], key=None if out.key is None else out.key.encode(),
                                  value=codec.encode(out.value), timestamp=ts)
            self.unobserved.append(ts)

    # ---- the outbox (at least once) ------------------------------------------------------
    def commit_checkpoint(self, force: bool = False, revoking: bool = False) -> None:
        """Quix's commit, with the outboxes: written into the checkpoint, published once
        it is committed, and emptied with the next one (at once before a revocation or a
        stop, so that the next owner finds nothing to publish again)."""
        context = self.context
        if self.held and not force and (self.idle or time.monotonic() - self.held_since >= OUTPUTS_WITHIN):
            force = True
        held = self.held if (force or context.checkpoint.expired()) else {}
        self._write_outboxes({partition: outbox.encode(items) for partition, items in held.items()})
        before = context.checkpoint
        self._commit_checkpoint(force=force, revoking=revoking)
        if self.unobserved and context.checkpoint is not before:  # flushed (and committed, exactly once)
            self.latency.observe_since(self.unobserved)
            self.unobserved = []
        if not held or context.checkpoint is before:
            return
        self.held, self.held_since = {}, None
        if self.failpoint.hit():
            self.failpoint.crash()  # committed, not yet published: the next owner publishes it
        self._send([item for items in held.values() for item in items])
        self._write_outboxes(dict.fromkeys(held, b""))
        if revoking or self.app.stopping:
            self._commit_checkpoint(force=True, revoking=revoking)

    def publish_outboxes_left(self, partitions: list[int] | None = None) -> None:
        """Publish what a stop left in the outboxes of the partitions just assigned
        (the same outputs: same ids and values), before their next record."""
        partitions = sorted(self.unrecovered) if partitions is None else partitions
        self.unrecovered.difference_update(partitions)
        for partition in partitions:
            transaction = self.context.checkpoint.get_store_transaction(stream_id=QUIX_STORE, partition=partition)
            items = outbox.decode(transaction.get_bytes(outbox.OUTBOX_KEY, prefix=OUTBOX_PREFIX))
            if items:
                self._send(items)
                transaction.set_bytes(outbox.OUTBOX_KEY, b"", prefix=OUTBOX_PREFIX)
                log.warning("published the outbox a stop left on partition %d: %d outputs", partition, len(items))

    def _write_outboxes(self, values: dict[int, bytes]) -> None:
        for partition, value in values.items():
            transaction = self.context.checkpoint.get_store_transaction(stream_id=QUIX_STORE, partition=partition)
            transaction.set_bytes(outbox.OUTBOX_KEY, value, prefix=OUTBOX_PREFIX)

    def _send(self, items: list) -> None:
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
        if self.unrecovered:  # state recovered (the loop polls only then)
            self.publish_outboxes_left()
        self.idle = True  # until a record comes: then held outputs need not wait

    def on_assigning(self) -> None:
        self.rebalancing = True

    # (health is written here and read by the API's thread)
    def on_assigned(self, topic_partitions) -> None:
        inputs = {self.outputs[CALIPER], self.outputs[SUBMISSIONS], self.outputs[MASTERY], self.rekeyed_name}
        self.assigned = {(tp.topic, tp.partition) for tp in topic_partitions if tp.topic in inputs}
        self.unrecovered |= {partition for _, partition in self.assigned}
        self.rebalancing = False
        self.metrics["rebalances"] += 1
        self.ever_assigned = True
        log.info("assigned partitions=%s", ",".join(f"{t}:{p}" for t, p in sorted(self.assigned)))

    def on_revoked(self, partitions: set[int], lost: bool) -> None:
        """Lost partitions' held outputs are dropped: their records are processed again
        by the next owner (revoked ones are published by the commit that follows)."""
        self.rebalancing = True
        self.assigned = set()
        self.unrecovered -= partitions
        if lost:
            for partition in partitions:
                self.held.pop(partition, None)

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
