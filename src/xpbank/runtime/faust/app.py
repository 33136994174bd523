"""The one wiring module: the Faust app, its topics and tables, and the agents.

Agents are thin: decode, apply the core through `handle_record`, keep the state changes
and the outputs in the checkpoint (runtime/faust/checkpoint.py), which writes the tables
and then publishes the outputs. Nothing else creates an app."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field

import faust

from xpbank.config import Settings
from xpbank.contract.topics import CALIPER, CURRICULUM, MASTERY, SUBMISSIONS, TOPICS
from xpbank.kafka.admin import Admin
from xpbank.kafka.background import BrokerProbe, guarded, keep_running
from xpbank.kafka.connection import aiokafka_options
from xpbank.processing.handlers import handle_record
from xpbank.processing.state import BufferedStore
from xpbank.read.projector import Projector
from xpbank.read.latency import Histogram
from xpbank.runtime import outbox
from xpbank.runtime.curriculum_view import CurriculumView
from xpbank.runtime.failpoints import Failpoint
from xpbank.runtime.faust.continuity import (
    DELIVERED, TAKE_OVER_AFTER, GapReader, Ledger, Progress, commit_processed, ledger_key, stalled, take_overs)
from xpbank.runtime.faust.checkpoint import Checkpoint
from xpbank.runtime.faust.tables import TableStore, send
from xpbank.runtime.faust.web import add_api
from xpbank.runtime.records import from_seconds, input_record, learner_record, observe, origin_headers
from xpbank.runtime.engines import FAUST_TABLES
from xpbank.runtime.topology import app_id, input_topics, rekeyed_topic

log = logging.getLogger("xpbank")
RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
RAW_TABLE = {"key_type": bytes, "value_type": bytes}  # tables derive the raw serializer from bytes
STALL_CHECK_SECONDS = 5.0  # a partition with no progress across two checks is read again


@dataclass
class Wiring:
    app: faust.App
    probe: BrokerProbe
    metrics: Counter = field(default_factory=Counter)
    latency: Histogram = field(default_factory=Histogram)  # record timestamp -> outputs published
    projector: Projector | None = None  # the read models' projector, when this worker runs it
    assigned: bool = False  # partitions were assigned once (Faust's recovery looks complete before)

    @property
    def recovered(self) -> bool:
        return self.assigned and self.app.tables.recovery.completed.is_set()


def create_app(settings: Settings, *, web: bool = True) -> Wiring:
    """`web=False` for a replay, which runs beside the live worker and serves nothing."""
    ident = app_id(settings)
    app = faust.App(
        ident,
        broker=settings.broker,
        broker_credentials=broker_credentials(settings),
        store=settings.store,
        datadir=str(settings.data_dir / ident),
        web_enabled=False,  # the API is read/server.py, served by a task below
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
    names = {spec.name: spec.full_name(settings.topic_prefix) for spec in TOPICS}
    topics = {name: app.topic(full, **RAW) for name, full in names.items()}
    rekeyed_name = rekeyed_topic(settings)
    rekeyed = app.topic(rekeyed_name, partitions=settings.partitions, **RAW)
    learner_inputs = app.topic(names[CALIPER], names[SUBMISSIONS], names[MASTERY], rekeyed_name, **RAW)

    def table(name: str) -> faust.Table:
        return app.Table(name, partitions=settings.partitions, **RAW_TABLE)

    curriculum_view = CurriculumView(settings)
    tables = {name: table(name) for name in FAUST_TABLES}
    checkpoint = Checkpoint(app, tables)
    learner_topics = set(learner_inputs.topics)
    store = TableStore(checkpoint, curriculum_view)
    wiring = Wiring(app, BrokerProbe(settings))
    metrics = wiring.metrics
    checkpoint.latency = wiring.latency
    rules = settings.rules
    if web:
        add_api(wiring, tables, curriculum_view, settings, input_topics(settings))
    if web and settings.projector:  # a replay leaves the read models to the live projector
        wiring.projector = Projector(settings, metrics)

        @app.task
        async def project() -> None:
            await wiring.projector.run()

    @app.task
    async def follow_curriculum() -> None:
        await curriculum_view.follow(metrics)

    @app.task
    async def watch_broker() -> None:
        await keep_running("broker check", wiring.probe.run, metrics)

    gaps = GapReader(settings)
    checkpoint.failpoint = failpoint = Failpoint()
    caliper_name = names[CALIPER]
    ledger = Ledger(lambda topic, partition: store.position(DELIVERED, ledger_key(topic, partition)))

    async def process(message) -> None:
        """Apply one learner-partition record (a Faust message or a refetched one): its
        state and outputs wait in the checkpoint; re-keyed copies are sent at once."""
        record, owner, is_copy = learner_record(
            message.topic, message.partition, message.offset, message.key, message.value, message.headers,
            from_seconds(message.timestamp), settings.topic_prefix, rekeyed_name, settings.partitions)
        store.partition = message.partition
        buffered = BufferedStore(store)
        handled = handle_record(buffered, record, rules, owner=owner, rekeyed=is_copy)
        for user in sorted(handled.foreign_users):  # route to the learner's own partition
            def copy(user: str = user):
                return rekeyed.send(key=user.encode(), value=message.value, force=True,
                                    headers=origin_headers(record), timestamp=message.timestamp)
            checkpoint.sent(await copy(), copy)
        checkpoint.hold(message.partition, outbox.pending(handled.outputs, settings.topic_prefix))
        ledger.processed(message.topic, message.partition, message.offset)
        buffered.set_position(DELIVERED, ledger_key(message.topic, message.partition), message.offset)
        buffered.flush()
        checkpoint.record_done()
        observe(wiring.metrics, record, handled, rekeyed=is_copy, owner=owner)

    @app.agent(learner_inputs, name="xpbank.learners", concurrency=1)
    async def learners(stream):
        async for event in stream.events():
            # decisions need the curriculum: a replay would otherwise race its own courses.
            # (Waited for here, not before iterating: faust delivers meanwhile.)
            await curriculum_view.ready.wait()
            async with checkpoint.lock:
                # a broker away makes these wait and try again (the same record, the same
                # checkpoint: both are safe to repeat), never end the worker
                await keep_running("learner record", lambda: learner(event.message), metrics)
                if failpoint.stalled_partition is not None and failpoint.stalls(
                        event.message.topic, event.message.partition, caliper_name):
                    app.consumer.pause_partitions({event.message.tp})  # (tests) fetched no more
                if checkpoint.due:
                    await keep_running("checkpoint", checkpoint.flush, metrics)
                elif checkpoint.held and not publishing_soon:
                    publishing_soon.append(app.add_future(publish_soon()))  # (crashes the worker if it fails)

    publishing_soon: list = []

    @guarded("checkpoint", metrics)
    async def publish_soon() -> None:
        """Held outputs leave within `outputs_within` even when no record follows soon
        (the idle timer alone would take up to its period; if this fails, it tries again)."""
        await asyncio.sleep(checkpoint.outputs_within)
        publishing_soon.clear()
        if checkpoint.held:
            async with checkpoint.lock:
                await checkpoint.flush()

    async def learner(message) -> None:
        store.partition = message.partition  # the ledger and the learner's state live there
        ledger.follow_generation(app.consumer_generation_id)
        if message.partition in checkpoint.unrecovered:
            await checkpoint.recover(message.partition)
        last = ledger.last(message.topic, message.partition)
        if last is not None and message.offset <= last:  # redelivered after a crash or rebalance
            log.debug("redelivered topic=%s partition=%s offset=%s", message.topic, message.partition, message.offset)
            wiring.metrics["redelivered"] += 1
            return
        start = last + 1 if last is not None else await gaps.log_start(message.topic, message.partition)
        if message.offset > start:
            missed = await gaps.read(message.topic, message.partition, start, message.offset)
            log.warning("records never delivered, read directly topic=%s partition=%s offsets=%d..%d count=%d",
                        message.topic, message.partition, start, message.offset - 1, len(missed))
            wiring.metrics["refetched"] += len(missed)
            for missing in missed:
                await process(missing)
                app.consumer.ack(missing)
        await process(message)

    @app.timer(checkpoint.every_seconds / 2)
    @guarded("checkpoint", metrics)
    async def checkpoint_when_idle() -> None:
        """A stream that goes quiet still gets its state written and its outputs published,
        and a partition taken over with no new records still gets its outbox published."""
        if checkpoint.lock.locked():
            return
        if checkpoint.unrecovered and not app.rebalancing and app.tables.recovery.completed.is_set():
            async with checkpoint.lock:
                for partition in sorted(checkpoint.unrecovered):
                    await checkpoint.recover(partition)
        if checkpoint.pending:
            async with checkpoint.lock:
                await checkpoint.flush()

    @app.on_partitions_revoked.connect
    async def checkpoint_before_revocation(app, revoked, **kwargs) -> None:
        """The next owner recovers the revoked partitions from their changelogs (what a
        failed last checkpoint left, it reads again from the committed offsets)."""
        async with checkpoint.lock:
            try:
                await checkpoint.settle()
            except Exception as exc:  # noqa: BLE001 - the broker away: the next owner reads those records again
                log.warning("last checkpoint before a revocation not written (%s: %s): the records since are read "
                            "again", type(exc).__name__, exc)
            checkpoint.forget({tp.partition for tp in revoked if tp.topic in learner_topics})

    @app.on_partitions_assigned.connect
    async def look_at_outboxes(app, assigned, **kwargs) -> None:
        """A stop can leave a durable outbox unpublished: published before the partition's
        next record, or by the idle timer once the tables are recovered."""
        checkpoint.unrecovered |= {tp.partition for tp in assigned if tp.topic in learner_topics}
        wiring.assigned = True

    last_check: dict = {}
    kicked: dict = {}  # partition -> kicks in a row
    admin: list[Admin] = []  # made on the first check, kept for the next ones

    async def take_over(tp, end: int) -> None:
        """Seeking back did not help: read the records not processed yet directly, write
        a checkpoint, and commit what the ledger has processed."""
        async with checkpoint.lock:
            if tp.partition in checkpoint.unrecovered:
                await checkpoint.recover(tp.partition)
            last = ledger.last(tp.topic, tp.partition)
            start = last + 1 if last is not None else await gaps.log_start(tp.topic, tp.partition)
            missed = await gaps.read(tp.topic, tp.partition, start, end) if start < end else []
            for missing in missed:
                await process(missing)
                app.consumer.ack(missing)
            await checkpoint.flush()
            done = ledger.last(tp.topic, tp.partition)
        if done is not None:
            await commit_processed(app.consumer, tp, done + 1)
        log.warning("partition made no progress in %d checks in a row, reading it again did not help: read %d "
                    "records directly and committed up to offset %s topic=%s partition=%s", TAKE_OVER_AFTER, len(missed),
                    None if done is None else done + 1, tp.topic, tp.partition)
        wiring.metrics["stall_take_overs"] += 1

    @app.timer(STALL_CHECK_SECONDS)
    @guarded("continuity watchdog", metrics)
    async def unstall_partitions() -> None:
        if (app.rebalancing or not app.tables.recovery.completed.is_set() or not app.consumer.flow_active
                or not wiring.probe.up):
            last_check.clear()  # progress is only compared across a calm stretch
            return
        assigned = [tp for tp in app.consumer.assignment() if tp.topic in learner_topics]
        try:
            ends = await gaps.end_offsets(assigned)
            if not admin:
                admin.append(Admin(settings))
            committed = await admin[0].committed(ident, retry_for=5)
        except Exception:
            last_check.clear()  # the broker away: compare again from the next calm check
            raise
        now = {tp: Progress(committed.get(tp), ledger.last(tp.topic, tp.partition), ends[tp])
               for tp in assigned}
        kicks = stalled(last_check, now)
        counts, due = take_overs(dict(kicked), kicks)
        kicked.clear()
        kicked.update(counts)
        for tp, offset in kicks.items():
            if tp in due and curriculum_view.ready.is_set():
                await take_over(tp, now[tp].end)
                continue
            start = offset if offset is not None else await gaps.log_start(tp.topic, tp.partition)
            log.warning("partition made no progress, reading it again topic=%s partition=%s from=%s end=%s",
                        tp.topic, tp.partition, start, now[tp].end)
            wiring.metrics["stall_restarts"] += 1
            if not failpoint.stalls(tp.topic, tp.partition, caliper_name):
                app.consumer.resume_partitions({tp})
            await app.consumer.seek(tp, start)
        last_check.clear()
        last_check.update(now)

    @app.task
    async def close_gap_reader_and_checkpoint() -> None:
        try:
            await asyncio.Event().wait()
        finally:  # stopping: write what is pending (if this fails, the ledger has the records read again)
            try:
                async with checkpoint.lock:
                    await checkpoint.settle()
            except Exception as exc:  # noqa: BLE001 - a stop must go on
                log.warning("last checkpoint not written (%s): records since are read again", exc)
            await gaps.stop()

    @app.agent(topics[CURRICULUM], name="xpbank.curriculum", concurrency=1)
    async def curriculum(stream):
        async for event in stream.events():
            m = event.message
            record = input_record(m.topic, m.partition, m.offset, m.key, m.value, from_seconds(m.timestamp),
                                  settings.topic_prefix)
            handled = handle_record(store, record, rules)

            async def publish() -> None:  # dead letters; sent again if the broker did not take them
                for acknowledged in await send(topics, handled.outputs):
                    await acknowledged

            await keep_running("curriculum dead letters", publish, metrics)
            observe(wiring.metrics, record, handled)

    return wiring


def broker_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """Faust's form of the one client security configuration (kafka/connection.py)."""
    options = aiokafka_options(settings)
    if settings.kafka.sasl:
        return faust.SASLCredentials(username=options["sasl_plain_username"], password=options["sasl_plain_password"],
                                     ssl_context=options.get("ssl_context"), mechanism=options["sasl_mechanism"])
    if settings.kafka.tls:
        return faust.SSLCredentials(options["ssl_context"])
    return None
