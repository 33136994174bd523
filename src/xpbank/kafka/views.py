"""Pure views of what the broker answers: the plan that converges topics to the registry
(what to create, alter, and every drift), lag per partition, a group's members and
state, and input partitions whose history was truncated. `admin` asks, these decide."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from xpbank.contract.topics import TopicSetup


@dataclass(frozen=True)
class Drift:
    topic: str
    key: str  # "exists", "partitions", "replication" or a config name
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.key} is {self.actual}, expected {self.expected}"


@dataclass(frozen=True)
class Described:
    partitions: int
    replication: int
    configs: dict[str, str]


def _same(key: str, expected: str, actual: str | None) -> bool:
    if key == "cleanup.policy":  # "compact,delete" and "delete,compact" are one policy
        return set(expected.split(",")) == set((actual or "").split(","))
    return expected == actual


def plan(wanted: Iterable[TopicSetup], found: dict[str, Described]) -> tuple[list[TopicSetup], dict[str, dict[str, str]], list[Drift]]:
    """(topics to create, configs to set per existing topic, every drift). Partition and
    replication counts are reported, never changed: a learner's state lives on the
    partition its records hash to."""
    create, alter, drifts = [], {}, []
    for setup in wanted:
        held = found.get(setup.name)
        if held is None:
            create.append(setup)
            drifts.append(Drift(setup.name, "exists", "yes", "no"))
            continue
        if held.partitions != setup.partitions:
            drifts.append(Drift(setup.name, "partitions", str(setup.partitions), str(held.partitions)))
        if held.replication != setup.replication:
            drifts.append(Drift(setup.name, "replication", str(setup.replication), str(held.replication)))
        for key, value in setup.configs:
            actual = held.configs.get(key)
            if not _same(key, value, actual):
                alter.setdefault(setup.name, {})[key] = value
                drifts.append(Drift(setup.name, key, value, str(actual)))
    return create, alter, drifts


def finite_retention(setups: Iterable[TopicSetup], drifts: Iterable[Drift]) -> list[Drift]:
    """Drifts that let the broker delete records of a topic replays or the worker read
    (inputs and the internal re-key topic)."""
    kept = {s.name for s in setups if s.role in ("input", "internal")}
    keys = {"retention.ms", "retention.bytes", "cleanup.policy"}
    return [d for d in drifts if d.topic in kept and d.key in keys]


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    start: int  # log start offset
    end: int  # end offset (next to be written)
    committed: int | None  # the group's committed offset, None when it committed nothing
    lag: int  # records from max(committed, start) to end


def partition_lag(starts: dict[tuple[str, int], int], ends: dict[tuple[str, int], int],
                  committed: dict[tuple[str, int], int]) -> list[PartitionLag]:
    """Lag per partition, sorted, counted from the log start where the group committed
    nothing or less than it (deleted records can never be consumed)."""
    rows = []
    for tp in sorted(ends):
        start, end, done = starts.get(tp, 0), ends[tp], committed.get(tp)
        rows.append(PartitionLag(tp[0], tp[1], start, end, done, max(0, end - max(start, done if done is not None else start))))
    return rows


@dataclass(frozen=True)
class GroupView:
    group: str
    state: str  # librdkafka's ConsumerGroupState name, as Kafka itself spells it
    members: dict[str, tuple[tuple[str, int], ...]]  # member (static instance id, else member id) -> partitions

    @property
    def rebalancing(self) -> bool:
        return self.state in ("PreparingRebalance", "CompletingRebalance")


@dataclass(frozen=True)
class Truncation:
    """A partition whose log no longer starts at offset 0: `start` records are gone."""

    topic: str
    partition: int
    start: int
    previous: int | None  # offset the previous generation had consumed to, if any

    def __str__(self) -> str:
        seen = f"; generation before had consumed to offset {self.previous}" if self.previous is not None else ""
        return f"{self.topic}:{self.partition} starts at offset {self.start} ({self.start:,} records gone{seen})"
