"""The Faust engine: the one wiring module of faust-streaming, behind the same interface
as the Quix engine (runtime/engines.py).

Agents are thin: the processing unit (runtime/unit.py) applies a record to its
partition's state, which waits in the checkpoint (runtime/faust/checkpoint.py) with the
record's outputs; the checkpoint writes the table and then publishes them. The
continuity layer (runtime/faust/continuity.py) makes every record processed once, in
offset order, whatever faust-streaming delivers. Nothing else creates a Faust app."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections import Counter
from collections.abc import Callable

import faust

from xpbank.config import Settings
from xpbank.contract.topics import CALIPER, CURRICULUM, MASTERY, SUBMISSIONS, TOPICS
from xpbank.kafka.admin import group_lag
from xpbank.kafka.background import BrokerProbe, guarded, keep_running
from xpbank.kafka.connection import aiokafka_options, librdkafka_config
from xpbank.observe.latency import Histogram
from xpbank.processing.learner_state import count_kinds
from xpbank.processing.upcast import FAUST_V1_TABLES
from xpbank.runtime.curriculum_view import CurriculumView
from xpbank.runtime.engines import FAUST_TABLE
from xpbank.runtime.faust import internals
from xpbank.runtime.faust.checkpoint import Checkpoint
from xpbank.runtime.faust.continuity import STALL_CHECK_SECONDS, Continuity
from xpbank.runtime.faust.restore import bulk_restore
from xpbank.runtime.records import from_seconds
from xpbank.runtime.stop_grace import exit_if_not_stopped_within
from xpbank.runtime.topology import app_id, changelogs_present, input_topics, rekeyed_topic
from xpbank.runtime.unit import ProcessingUnit

log = logging.getLogger("xpbank")
RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
RAW_TABLE = {"key_type": bytes, "value_type": bytes}  # tables derive the raw serializer from bytes


def faust_app(settings: Settings) -> faust.App:
    ident = app_id(settings)
    return faust.App(
        ident,
        broker=settings.broker,
        broker_credentials=broker_credentials(settings),
        store=settings.store,
        datadir=str(settings.data_dir / ident),
        web_enabled=False,  # the runner serves the API (entrypoints/worker.py)
        web_port=settings.web_port,
        consumer_auto_offset_reset="earliest",
        # static membership: a worker restarted under the same name takes back its
        # partitions without a multi-member rebalance
        consumer_group_instance_id=settings.instance_id or None,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=0,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=1,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        # no linger: a checkpoint sends its changelog records in one burst, which batches
        # them anyway, and every checkpoint and publication waits for its acks (10 ms
        # cost 25 ms of a mastery's latency per hop and a third of envelope throughput)
        producer_linger_ms=0,
        # wait for in-flight records before partitions are revoked: otherwise a record's
        # table writes race the store closing the revoked partition (a worker hung so)
        stream_wait_empty=True,
    )


class FaustEngine:
    name = "faust"
    quiet_loggers = ("faust", "mode", "aiokafka", "aiohttp", "kafka")
    runs_background = True  # the curriculum view and the broker probe run in Faust's own loop

    def __init__(self, settings: Settings, curriculum: CurriculumView, probe: BrokerProbe, metrics: Counter,
                 latency: Histogram, *, legacy_tables: bool | None = None) -> None:
        """`legacy_tables`: whether the faust-v1 tables are read through (None: where
        their changelogs exist on the broker)."""
        if legacy_tables is None:
            legacy_tables = changelogs_present(settings, FAUST_V1_TABLES)
        self.settings, self.curriculum, self.probe, self.metrics = settings, curriculum, probe, metrics
        self.latency = latency
        self.app = app = faust_app(settings)
        os.makedirs(app.conf.datadir, exist_ok=True)
        names = {spec.name: spec.full_name(settings.topic_prefix) for spec in TOPICS}
        self.caliper_name = names[CALIPER]
        self.rekeyed = app.topic(rekeyed_topic(settings), partitions=settings.partitions, **RAW)
        self.learner_inputs = app.topic(names[CALIPER], names[SUBMISSIONS], names[MASTERY], rekeyed_topic(settings),
                                        **RAW)
        self.curriculum_topic = app.topic(names[CURRICULUM], **RAW)
        tables = (FAUST_TABLE, *FAUST_V1_TABLES) if legacy_tables else (FAUST_TABLE,)
        self.unit = ProcessingUnit(settings, curriculum, keeps_ledger=True, holds_outputs=True, metrics=metrics,
                                   latency=latency)
        restore = bulk_restore(librdkafka_config(settings), settings.session_timeout_seconds)
        self.checkpoint = checkpoint = Checkpoint(
            app, {name: internals.bulk_restoring_table(app, name, restore, partitions=settings.partitions, **RAW_TABLE)
                  for name in tables}, self.unit.outbox, self.unit)
        checkpoint.latency = latency
        self.continuity = Continuity(
            settings, app, checkpoint, lambda topic, partition: self.unit.ledger(checkpoint.port(partition), topic,
                                                                              partition),
            self.process, metrics, set(self.learner_inputs.topics))
        self.assigned = False  # partitions were assigned once (Faust's recovery looks complete before)
        self.publishing_soon: asyncio.Future | None = None
        self.started: Callable[[], None] = lambda: None
        self._wire()

    # ---- the runner's interface ----------------------------------------------------------
    @property
    def recovered(self) -> bool:
        return self.assigned and self.app.tables.recovery.completed.is_set()

    @property
    def rebalancing(self) -> bool:
        return bool(self.app.rebalancing)

    def table_sizes(self) -> dict[str, int]:
        """Keys of the one table per kind (as the five tables it replaced were named), and
        of faust-v1's own tables while they are read through (`v1-<name>`)."""
        sizes = _kinds(self.checkpoint.tables[FAUST_TABLE])
        sizes.update({f"v1-{name}": _size(table) for name, table in self.checkpoint.tables.items()
                      if name != FAUST_TABLE})
        return sizes

    async def caught_up(self) -> bool:
        """Every input record present processed and committed (the group's lag is 0)."""
        return sum((await group_lag(self.settings, self.app.conf.id, input_topics(self.settings))).values()) == 0

    def run(self, loglevel: str, started: Callable[[], None]) -> None:
        """Until SIGTERM/SIGINT; `started` is called in the running worker (after Faust
        set up logging)."""
        self.started = started
        worker = internals.worker_class_stopping_within(exit_if_not_stopped_within)(self.app, loglevel=loglevel,
                                                                                    quiet=True)
        worker.spinner = None  # faust's spinner switches the root logger to DEBUG
        worker.execute_from_commandline()

    def stop(self) -> None:
        """A clean stop (commit, flush, close), from any thread."""
        os.kill(os.getpid(), signal.SIGTERM)

    # ---- wiring ----------------------------------------------------------------------------
    def _wire(self) -> None:
        app, metrics = self.app, self.metrics
        app.agent(self.learner_inputs, name="xpbank.learners", concurrency=1)(self.learners)
        app.agent(self.curriculum_topic, name="xpbank.curriculum", concurrency=1)(self.curriculum_records)
        app.task(self.announce)
        app.task(self.follow_curriculum)
        app.task(self.watch_broker)
        app.task(self.checkpoint_at_stop)
        app.timer(self.checkpoint.every_seconds / 2)(guarded("checkpoint", metrics)(self.checkpoint_when_idle))
        app.timer(STALL_CHECK_SECONDS)(guarded("continuity watchdog", metrics)(self.unstall_partitions))
        app.on_partitions_revoked.connect(self.checkpoint_before_revocation)
        app.on_partitions_assigned.connect(self.look_at_outboxes)

    async def announce(self) -> None:
        self.started()

    async def follow_curriculum(self) -> None:
        await self.curriculum.follow(self.metrics)

    async def watch_broker(self) -> None:
        await keep_running("broker check", self.probe.run, self.metrics)

    # ---- learner records -------------------------------------------------------------------
    async def learners(self, stream) -> None:
        checkpoint, failpoint = self.checkpoint, self.unit.outbox.failpoint
        waiting = stream.channel.queue  # the records delivered to this agent, not yet read
        async for event in stream.events():
            # decisions need the curriculum: a replay would otherwise race its own courses.
            # (Waited for here, not before iterating: faust delivers meanwhile.)
            await self.curriculum.ready.wait()
            message = event.message
            async with checkpoint.lock:
                # a broker away makes these wait and try again (the same record, the same
                # checkpoint: both are safe to repeat), never end the worker
                await keep_running("learner record", lambda: self.learner(message), self.metrics)
                if failpoint.stalled_partition is not None and failpoint.stalls(
                        message.topic, message.partition, self.caliper_name):
                    self.app.consumer.pause_partitions({message.tp})  # (tests) fetched no more
                if checkpoint.due(idle=waiting.empty()):  # held outputs leave at once when none follows
                    await keep_running("checkpoint", checkpoint.flush, self.metrics)
                elif self.unit.outbox.held and self.publishing_soon is None:
                    self.publishing_soon = self.app.add_future(self.publish_soon())  # (crashes the worker if it fails)

    async def learner(self, message) -> None:
        self.continuity.ledger.follow_generation(self.app.consumer_generation_id)
        if message.partition in self.unit.outbox.unrecovered:
            await self.checkpoint.recover(message.partition)
        await self.continuity.deliver(message)

    async def process(self, message) -> None:
        """Apply one learner-partition record (a Faust message or one read directly): its
        state and outputs wait in the checkpoint; re-keyed copies are sent at once."""
        step = self.unit.learner(self.checkpoint.port(message.partition), message.topic, message.partition,
                                 message.offset, message.key, message.value, message.headers,
                                 from_seconds(message.timestamp))
        for key, headers in step.copies:  # to the learner's own partition
            def copy(key: bytes = key, headers: list = headers):
                return self.rekeyed.send(key=key, value=message.value, force=True, headers=headers,
                                         timestamp=message.timestamp)
            self.checkpoint.sent(await copy(), copy)
        self.unit.keep(step, message.topic, message.partition, message.offset)
        self.continuity.ledger.processed(message.topic, message.partition, message.offset)
        self.checkpoint.record_done()

    async def publish_soon(self) -> None:
        """Held outputs leave within the outbox's window even when no record follows soon
        (the idle timer alone would take up to its period; if this fails, it tries again)."""
        @guarded("checkpoint", self.metrics)
        async def publish() -> None:
            await asyncio.sleep(self.unit.outbox.within)
            self.publishing_soon = None
            if self.unit.outbox.held:
                async with self.checkpoint.lock:
                    await self.checkpoint.flush()
        await publish()

    # ---- checkpoints around the stream -----------------------------------------------------
    async def checkpoint_when_idle(self) -> None:
        """A stream that goes quiet still gets its state written and its outputs published,
        and a partition taken over with no new records still gets its outbox published."""
        checkpoint = self.checkpoint
        if checkpoint.lock.locked():
            return
        if (checkpoint.outbox.unrecovered and not self.app.rebalancing
                and self.app.tables.recovery.completed.is_set()):
            async with checkpoint.lock:
                for partition in sorted(checkpoint.outbox.unrecovered):
                    await checkpoint.recover(partition)
        if checkpoint.pending:
            async with checkpoint.lock:
                await checkpoint.flush()

    async def checkpoint_before_revocation(self, app, revoked, **kwargs) -> None:
        """The next owner recovers the revoked partitions from their changelogs (what a
        failed last checkpoint left, it reads again from the committed offsets)."""
        async with self.checkpoint.lock:
            try:
                await self.checkpoint.settle()
            except Exception as exc:  # noqa: BLE001 - the broker away: the next owner reads those records again
                log.warning("last checkpoint before a revocation not written (%s: %s): the records since are read "
                            "again", type(exc).__name__, exc)
            self.checkpoint.forget({tp.partition for tp in revoked if tp.topic in self.continuity.learner_topics})

    async def look_at_outboxes(self, app, assigned, **kwargs) -> None:
        """A stop can leave a durable outbox unpublished: published before the partition's
        next record, or by the idle timer once the tables are recovered."""
        self.unit.outbox.unrecovered |= {tp.partition for tp in assigned if tp.topic in self.continuity.learner_topics}
        self.assigned = True

    async def unstall_partitions(self) -> None:
        failpoint = self.unit.outbox.failpoint
        await self.continuity.watch(self.probe.up, self.curriculum.ready.is_set(),
                                    lambda tp: not failpoint.stalls(tp.topic, tp.partition, self.caliper_name))

    async def checkpoint_at_stop(self) -> None:
        try:
            await asyncio.Event().wait()
        finally:  # stopping: write what is pending (if this fails, the ledger has the records read again)
            try:
                async with self.checkpoint.lock:
                    await self.checkpoint.settle()
            except Exception as exc:  # noqa: BLE001 - a stop must go on
                log.warning("last checkpoint not written (%s): records since are read again", exc)
            await self.continuity.gaps.stop()

    # ---- curriculum records ----------------------------------------------------------------
    async def curriculum_records(self, stream) -> None:
        async for event in stream.events():
            m = event.message
            items = self.unit.curriculum_record(m.topic, m.partition, m.offset, m.key, m.value,
                                                from_seconds(m.timestamp))
            if items:  # dead letters; sent again if the broker did not take them
                await keep_running("curriculum dead letters", lambda: self.checkpoint.send(items), self.metrics)


def broker_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """Faust's form of the one client security configuration (kafka/connection.py)."""
    options = aiokafka_options(settings)
    if settings.kafka.sasl:
        return faust.SASLCredentials(username=options["sasl_plain_username"], password=options["sasl_plain_password"],
                                     ssl_context=options.get("ssl_context"), mechanism=options["sasl_mechanism"])
    if settings.kafka.tls:
        return faust.SSLCredentials(options["ssl_context"])
    return None


def _kinds(table: faust.Table) -> dict[str, int]:
    try:
        return count_kinds(table.keys())
    except Exception:  # noqa: BLE001 - a store mid-rebalance
        return {}


def _size(table: faust.Table) -> int:
    try:
        return len(table)
    except Exception:  # noqa: BLE001 - a store mid-rebalance
        return 0
