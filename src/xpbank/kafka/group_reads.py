"""Consumer-group reads (committed offsets, members, state) through aiokafka's admin client.

Not through confluent-kafka: librdkafka 2.12's admin client aborts the whole process
(`rd_kafka_enq_once_del_source_return: Assertion eonce->refcnt > 0 failed`) when the
connection drops during a group-coordinator request (librdkafka issue 4605), which a
broker restart does to every worker, projector and page that asks for lag. A failure here
is an exception like any other (KafkaUnavailable)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from aiokafka.errors import (
    CoordinatorLoadInProgressError, CoordinatorNotAvailableError, KafkaError, NotCoordinatorError,
)

from xpbank.config import Settings
from xpbank.kafka.connection import aiokafka_options

SETTLING = (CoordinatorLoadInProgressError, CoordinatorNotAvailableError, NotCoordinatorError)
# The broker names a static member `{group.instance.id}-{uuid}`, a dynamic one `{client.id}-{uuid}`.
MEMBER_SUFFIX = re.compile(r"-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class GroupUnavailable(RuntimeError):
    """The group coordinator did not answer (the broker away, or still loading)."""


async def _asking(settings: Settings, timeout: float, call: Callable[[AIOKafkaAdminClient], Awaitable]):
    client = AIOKafkaAdminClient(**aiokafka_options(settings), request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(client.start(), timeout)
        return await asyncio.wait_for(call(client), timeout)
    finally:
        await client.close()


async def committed(settings: Settings, group: str, timeout: float, retry_for: float) -> dict[tuple[str, int], int]:
    """The group's committed offsets (next to read); {} for a group that never committed.
    A coordinator still loading (a fresh or restarted broker) is asked again until
    `retry_for` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + retry_for
    while True:
        try:
            found = await _asking(settings, timeout, lambda client: client.list_consumer_group_offsets(group))
        except SETTLING as exc:
            if loop.time() > deadline:
                raise GroupUnavailable(f"cannot read the offsets of group {group}: {type(exc).__name__}") from None
            await asyncio.sleep(0.5)
            continue
        except (KafkaError, OSError, TimeoutError) as exc:
            raise GroupUnavailable(f"cannot read the offsets of group {group}: {type(exc).__name__}: {exc}") from None
        return {(tp.topic, tp.partition): meta.offset for tp, meta in found.items() if meta.offset >= 0}


async def described(settings: Settings, group: str, timeout: float) -> tuple[str, dict[str, tuple[tuple[str, int], ...]]]:
    """The group's state (Stable, PreparingRebalance, Empty, Dead, ...) and the partitions
    each member holds, by member name (its static instance id, else its client id)."""
    try:
        [response] = await _asking(settings, timeout, lambda client: client.describe_consumer_groups([group]))
    except (KafkaError, OSError, TimeoutError) as exc:
        raise GroupUnavailable(f"cannot describe group {group}: {type(exc).__name__}: {exc}") from None
    error, _, state, _, _, members = response.groups[0][:6]
    if error:
        raise GroupUnavailable(f"cannot describe group {group}: error code {error}")
    holding = {}
    for member_id, _, _, _, assignment in members:
        partitions = ConsumerProtocolMemberAssignment.decode(assignment).partitions() if assignment else []
        holding[MEMBER_SUFFIX.sub("", member_id)] = tuple(sorted((tp.topic, tp.partition) for tp in partitions))
    return state or "Dead", holding
