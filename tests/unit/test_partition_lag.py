"""Lag per partition, as the web page shows it: counted from the log start where the
group committed nothing or less, never negative; the per-topic lag is its sum."""

from __future__ import annotations

from xpbank.kafka.views import GroupView, PartitionLag, partition_lag


def test_lag_per_partition_counts_from_the_log_start_and_never_goes_negative():
    starts = {("t", 0): 0, ("t", 1): 40, ("t", 2): 0, ("u", 0): 5}
    ends = {("t", 0): 10, ("t", 1): 50, ("t", 2): 0, ("u", 0): 5}
    committed = {("t", 0): 7, ("t", 1): 12, ("u", 0): 9}  # t1: committed before records were deleted
    assert partition_lag(starts, ends, committed) == [
        PartitionLag("t", 0, 0, 10, 7, 3),
        PartitionLag("t", 1, 40, 50, 12, 10),  # the 28 deleted records are not "behind"
        PartitionLag("t", 2, 0, 0, None, 0),  # empty, nothing committed
        PartitionLag("u", 0, 5, 5, 9, 0),  # committed past the end (a transaction marker): 0, not -4
    ]


def test_a_partition_the_group_never_committed_lags_by_every_record_it_still_holds():
    assert partition_lag({("t", 0): 3}, {("t", 0): 8}, {}) == [PartitionLag("t", 0, 3, 8, None, 5)]


def test_a_group_is_rebalancing_while_preparing_or_completing_a_rebalance():
    assert GroupView("g", "PreparingRebalance", {}).rebalancing
    assert GroupView("g", "CompletingRebalance", {}).rebalancing
    assert not GroupView("g", "Stable", {"w1": (("t", 0),)}).rebalancing


def test_answers_of_a_leader_that_just_moved_are_asked_again_and_a_refusal_is_not():
    """A broker killed in a cluster: the new leader answers the old epoch with
    FENCED_LEADER_EPOCH for a moment (CI's lag check failed on it); librdkafka does not
    mark it retriable, Kafka's own clients retry it after a metadata refresh."""
    from confluent_kafka import KafkaError, KafkaException

    from xpbank.kafka.admin import _retriable

    for code in (KafkaError.FENCED_LEADER_EPOCH, KafkaError.UNKNOWN_LEADER_EPOCH, KafkaError.NOT_LEADER_FOR_PARTITION,
                 KafkaError.OFFSET_NOT_AVAILABLE, KafkaError.LEADER_NOT_AVAILABLE):
        assert _retriable(KafkaException(KafkaError(code)))
    assert not _retriable(KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)))
    assert not _retriable(ValueError("not a Kafka error"))
