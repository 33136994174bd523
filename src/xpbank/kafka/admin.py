"""Topic administration and offsets with confluent-kafka's AdminClient (it has the
incremental config changes and earliest offsets that aiokafka's admin lacks).

`views.plan` decides, as a pure function, what to create, what to alter and what differs;
`Admin` talks to the broker and awaits its futures on the running asyncio loop. Clients
are made per use, never at import time."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, OffsetSpec, ResourceType,
)

from xpbank.config import Settings
from xpbank.kafka import group_reads
from xpbank.kafka.connection import librdkafka_config
from xpbank.contract.topics import TopicSetup
from xpbank.kafka.views import Described, Drift, GroupView, PartitionLag, Truncation, partition_lag, plan

log = logging.getLogger("xpbank.kafka")


class TopicSetupError(RuntimeError):
    """The broker refused to create or alter a topic, or one differs in a way xpbank
    never changes by itself (partitions, replication)."""


class FiniteRetention(RuntimeError):
    """An input topic deletes records by time or size: replays would lose history."""


class KafkaUnavailable(RuntimeError):
    """The broker could not be reached or refused the connection; says why."""


class BrokerAway(KafkaUnavailable):
    """No broker answered in time (down, restarting, unreachable): worth waiting for,
    unlike a broker that answers and refuses us."""


# Answers of a cluster that is still settling (a topic or broker just created, a leader
# just moved: the errors Kafka's own clients retry after refreshing metadata, which
# librdkafka does not mark retriable): try again.
SETTLING = frozenset({
    KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.NOT_COORDINATOR,
    KafkaError.FENCED_LEADER_EPOCH, KafkaError.UNKNOWN_LEADER_EPOCH, KafkaError.OFFSET_NOT_AVAILABLE,
    KafkaError.REPLICA_NOT_AVAILABLE,
})


def _retriable(error: BaseException) -> bool:
    if not (isinstance(error, KafkaException) and error.args and isinstance(error.args[0], KafkaError)):
        return False
    return error.args[0].retriable() or error.args[0].code() in SETTLING


def explain(error: KafkaException | KafkaError, what: str) -> str:
    """A KafkaException as one line naming the cause."""
    err = error.args[0] if isinstance(error, KafkaException) and error.args else error
    text = err.str() if isinstance(err, KafkaError) else str(err)
    return f"{what}: {text}"


def connection_problem(text: str) -> str | None:
    """What a client error says about the connection, in an operator's words (None: not
    a connection problem we recognise)."""
    lowered = text.lower()
    if "authentication failed" in lowered or "sasl authentication" in lowered:
        return "authentication failed: check XPBANK_KAFKA_USERNAME, XPBANK_KAFKA_PASSWORD and XPBANK_KAFKA_SASL_MECHANISM"
    if "certificate verify failed" in lowered or "unable to get local issuer" in lowered or "self-signed" in lowered:
        return "the broker's certificate is not trusted: check XPBANK_KAFKA_CA_FILE"
    if ("ssl handshake" in lowered or "security.protocol" in lowered or "wrong version number" in lowered
            or "disconnected" in lowered and "apiversion_query" in lowered):  # a plaintext client at a TLS port
        return "wrong protocol for this listener: check XPBANK_KAFKA_SECURITY_PROTOCOL (and the port)"
    if "connection refused" in lowered or "all broker connections are down" in lowered or "resolve" in lowered:
        return "no broker answers at that address: check XPBANK_BROKER"
    return None


class _ConnectionProblems:
    """What librdkafka reports about the connection, collected as operator words
    (`connection_problem`): its error callback and its own chatter, logged at DEBUG
    (some causes are only in those lines). It holds the list, never the Admin: a
    callback bound to the Admin would make a reference cycle, and each client (with its
    librdkafka threads and sockets) would then live on until the cyclic collector ran,
    a dozen at a time under the broker probe's one client every 2 s."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def log(self, level: int, message: str, *args) -> None:
        text = message % args if args else message
        log.debug(text)
        self._note(text)

    def error(self, error: KafkaError) -> None:
        self._note(error.str())

    def _note(self, text: str) -> None:
        problem = connection_problem(text)
        if problem and problem not in self.problems:
            self.problems.append(problem)


def _list_topics(client: AdminClient) -> tuple[object | None, str]:
    """(the cluster's metadata, "") or (None, why not). The error is caught in the
    thread: raised through the awaiting frames, its traceback and asyncio's futures
    would hold them, and the Admin with its client, in a cycle."""
    try:
        return client.list_topics(timeout=1.0), ""
    except KafkaException as exc:
        return None, explain(exc, "unavailable")


class Admin:
    def __init__(self, settings: Settings, timeout: float = 30.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self.problems: list[str] = []  # what librdkafka reported about the connection
        reported = _ConnectionProblems(self.problems)
        self.client = AdminClient(librdkafka_config(settings) | {"error_cb": reported.error}, logger=reported)

    async def answers(self, futures: dict) -> dict:
        """The admin client's futures awaited, by key (a failure as its value)."""
        keys = list(futures)
        results = await asyncio.gather(*(asyncio.wrap_future(futures[k]) for k in keys), return_exceptions=True)
        return dict(zip(keys, results))

    async def metadata(self):
        """The cluster's metadata. A broker that answers at all answers at once; one that
        refuses us (credentials, certificates, protocol) says so within seconds, and that
        cause, not a timeout, is the error."""
        deadline = time.monotonic() + min(self.timeout, 15)
        while True:
            answer, failure = await asyncio.to_thread(_list_topics, self.client)
            if answer is not None:
                return answer
            self.client.poll(0)  # serves error_cb
            if self.problems and not self.problems[-1].startswith("no broker answers"):
                raise KafkaUnavailable(f"cannot use the broker at {self.settings.broker}: {self.problems[-1]}")
            if time.monotonic() > deadline:
                cause = self.problems[-1] if self.problems else failure
                raise BrokerAway(f"cannot use the broker at {self.settings.broker}: {cause}")

    async def broker_configs(self) -> dict[str, str]:
        """The configs of one broker of the cluster (its defaults for every topic)."""
        meta = await self.metadata()
        resource = ConfigResource(ResourceType.BROKER, str(min(meta.brokers)))
        [result] = (await self.answers(self.client.describe_configs([resource], request_timeout=self.timeout))).values()
        if isinstance(result, BaseException):
            raise KafkaUnavailable(explain(result, "cannot read the broker's configs"))
        return {k: e.value for k, e in result.items()}

    async def describe(self, names: Iterable[str]) -> dict[str, Described]:
        """The topics among `names` that exist, with their partitions, replicas and configs."""
        meta = await self.metadata()
        present = [n for n in names if n in meta.topics and meta.topics[n].error is None]
        if not present:
            return {}
        answers = await self.answers(self.client.describe_configs(
            [ConfigResource(ResourceType.TOPIC, n) for n in present], request_timeout=self.timeout))
        described = {}
        for resource, result in answers.items():
            if isinstance(result, BaseException):
                raise TopicSetupError(explain(result, f"cannot read the configs of topic {resource.name}"))
            partitions = meta.topics[resource.name].partitions
            replicas = min((len(p.replicas) for p in partitions.values()), default=0)
            described[resource.name] = Described(len(partitions), replicas, {k: e.value for k, e in result.items()})
        return described

    async def create(self, setups: list[TopicSetup]) -> list[str]:
        """Create the topics with their configs; returns the names created now (a racing
        creator's topic counts as present)."""
        if not setups:
            return []
        new = [NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication, config=s.config)
               for s in setups]
        answers = await self.answers(self.client.create_topics(new, request_timeout=self.timeout))
        created = []
        for name, result in answers.items():
            if isinstance(result, KafkaException) and result.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            if isinstance(result, BaseException):
                raise TopicSetupError(explain(result, f"cannot create topic {name}"))
            created.append(name)
        return created

    async def alter(self, changes: dict[str, dict[str, str]]) -> None:
        """Set the given configs of existing topics (incremental: other configs stay)."""
        if not changes:
            return
        resources = [
            ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
                ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET) for key, value in configs.items()])
            for name, configs in changes.items()
        ]
        answers = await self.answers(self.client.incremental_alter_configs(resources, request_timeout=self.timeout))
        for resource, result in answers.items():
            if isinstance(result, BaseException):
                raise TopicSetupError(explain(result, f"cannot alter the configs of topic {resource.name}"))

    async def until_visible(self, setups: list[TopicSetup], timeout: float = 30) -> None:
        """Creation returns before every broker's metadata has the topics; wait for it."""
        deadline = time.monotonic() + timeout
        while True:
            meta = await self.metadata()
            missing = [s.name for s in setups if s.name not in meta.topics or not meta.topics[s.name].partitions
                       or any(p.leader < 0 for p in meta.topics[s.name].partitions.values())]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise TopicSetupError(f"topics not visible after {timeout:.0f}s: {missing}")
            await asyncio.sleep(0.2)

    async def partitions(self, topics: Iterable[str]) -> list[tuple[str, int]]:
        meta = await self.metadata()
        return [(t, p) for t in topics if t in meta.topics for p in sorted(meta.topics[t].partitions)]

    async def offsets(self, tps: Iterable[tuple[str, int]], earliest: bool) -> dict[tuple[str, int], int]:
        """Log start (`earliest`) or end offsets."""
        spec = OffsetSpec.earliest() if earliest else OffsetSpec.latest()
        request = {TopicPartition(t, p): spec for t, p in tps}
        if not request:
            return {}
        deadline = time.monotonic() + self.timeout
        while True:  # a partition just created may not have its leader yet: retriable
            answers = await self.answers(self.client.list_offsets(request, request_timeout=self.timeout))
            failed = {tp: r for tp, r in answers.items() if isinstance(r, BaseException)}
            if not failed:
                return {(tp.topic, tp.partition): result.offset for tp, result in answers.items()}
            tp, result = next(iter(failed.items()))
            if not _retriable(result) or time.monotonic() > deadline:
                raise KafkaUnavailable(explain(result, f"cannot read the offsets of {tp.topic}:{tp.partition}"))
            await asyncio.sleep(0.5)

    async def committed(self, group: str, retry_for: float = 60.0) -> dict[tuple[str, int], int]:
        """The group's committed offsets (next to read), through `groups` (aiokafka): a
        fresh broker creates __consumer_offsets lazily, and until then the coordinator
        answers "not yet", which is asked again for `retry_for` seconds."""
        try:
            return await group_reads.committed(self.settings, group, min(self.timeout, 15), retry_for)
        except group_reads.GroupUnavailable as exc:
            raise KafkaUnavailable(str(exc)) from None

    async def members(self, group: str) -> dict[str, set[tuple[str, int]]]:
        """The partitions assigned to each member of a consumer group (by its static
        instance id, else its client id)."""
        return {name: set(tps) for name, tps in (await self.group(group)).members.items()}

    async def lag(self, group: str, topics: Iterable[str]) -> dict[str, int]:
        """Records of `topics` not yet committed by `group`, per topic. Counted from the
        log start where the group committed nothing (or less): records the broker
        deleted can never be consumed, so they are not "behind"."""
        lag: dict[str, int] = {}
        for row in await self.partition_lag(group, topics):
            lag[row.topic] = lag.get(row.topic, 0) + row.lag
        return lag

    async def partition_lag(self, group: str, topics: Iterable[str]) -> list[PartitionLag]:
        """The same per partition, with the offsets it is counted from."""
        tps = await self.partitions(topics)
        starts, ends = await self.offsets(tps, earliest=True), await self.offsets(tps, earliest=False)
        return partition_lag(starts, ends, await self.committed(group))

    async def group(self, group: str) -> GroupView:
        """A consumer group's state (Stable, PreparingRebalance, Empty, ...) and the
        partitions each member holds; a group the broker does not know is Dead, no members."""
        try:
            state, members = await group_reads.described(self.settings, group, min(self.timeout, 15))
        except group_reads.GroupUnavailable as exc:
            raise KafkaUnavailable(str(exc)) from None
        return GroupView(group, state, members)


async def converge(settings: Settings, setups: list[TopicSetup]) -> tuple[list[str], dict[str, dict[str, str]], list[Drift]]:
    """`xpbank topics create`: create what is missing, set configs that differ. Returns
    (created, altered configs, drifts left: partitions and replication)."""
    admin = Admin(settings)
    create, alter, drifts = plan(setups, await admin.describe(s.name for s in setups))
    created = await admin.create(create)
    await admin.alter(alter)
    await admin.until_visible(setups)
    return created, alter, [d for d in drifts if d.key in ("partitions", "replication")]


async def create_missing(settings: Settings, setups: list[TopicSetup]) -> list[Drift]:
    """What a worker does at start: create missing topics, change nothing else, and
    return every drift of the existing ones."""
    admin = Admin(settings)
    create, _, drifts = plan(setups, await admin.describe(s.name for s in setups))
    await admin.create(create)
    await admin.until_visible(setups)
    return [d for d in drifts if d.key != "exists"]


async def check(settings: Settings, setups: list[TopicSetup]) -> list[Drift]:
    """`xpbank topics check`: every drift, nothing changed."""
    admin = Admin(settings)
    return plan(setups, await admin.describe(s.name for s in setups))[2]


async def group_lag(settings: Settings, group: str, topics: Iterable[str]) -> dict[str, int]:
    return await Admin(settings).lag(group, topics)


async def truncations(settings: Settings, topics: Iterable[str], previous_group: str | None) -> list[Truncation]:
    """Input partitions whose history no longer starts at offset 0 (deleted by retention
    or delete-records): a replay would rebuild state from part of the log."""
    admin = Admin(settings)
    starts = await admin.offsets(await admin.partitions(topics), earliest=True)
    previous = await admin.committed(previous_group, retry_for=10) if previous_group else {}
    return [Truncation(t, p, start, previous.get((t, p))) for (t, p), start in sorted(starts.items()) if start > 0]
