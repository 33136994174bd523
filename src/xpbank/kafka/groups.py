"""Consumer groups and topics listed and deleted, for cleaning up a generation
(`xpbank generations`). Deleting is for the admin (docs/operations.md: the `xpbank`
user may not); a group that still has members is refused by the broker itself."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException

from xpbank.kafka.admin import Admin, KafkaUnavailable, explain


async def group_names(admin: Admin) -> list[str]:
    """Every consumer group the cluster knows."""
    try:
        listed = await admin.answers({"groups": admin.client.list_consumer_groups(request_timeout=admin.timeout)})
    except KafkaException as exc:
        raise KafkaUnavailable(explain(exc, "cannot list the consumer groups")) from None
    result = listed["groups"]
    if isinstance(result, BaseException):
        raise KafkaUnavailable(explain(result, "cannot list the consumer groups"))
    return sorted(g.group_id for g in result.valid)


async def delete_groups(admin: Admin, names: Iterable[str]) -> list[str]:
    """Delete the groups; returns those deleted now (one already gone counts as done)."""
    names = list(names)
    if not names:
        return []
    answers = await admin.answers(admin.client.delete_consumer_groups(names, request_timeout=admin.timeout))
    deleted = []
    for name, result in answers.items():
        if isinstance(result, KafkaException) and result.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND:
            continue
        if isinstance(result, BaseException):
            raise KafkaUnavailable(explain(result, f"cannot delete group {name}"))
        deleted.append(name)
    return deleted


async def delete_topics(admin: Admin, names: Iterable[str]) -> list[str]:
    """Delete the topics; returns those deleted now (one already gone counts as done)."""
    names = list(names)
    if not names:
        return []
    answers = await admin.answers(admin.client.delete_topics(names, operation_timeout=60, request_timeout=admin.timeout))
    deleted = []
    for name, result in answers.items():
        if isinstance(result, KafkaException) and result.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            continue
        if isinstance(result, BaseException):
            raise KafkaUnavailable(explain(result, f"cannot delete topic {name}"))
        deleted.append(name)
    return deleted
