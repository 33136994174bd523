"""The stall watchdog's decision (xpbank.runtime.faust.continuity), without a broker."""

from __future__ import annotations

from xpbank.runtime.faust.continuity import TAKE_OVER_AFTER, Progress, resume_offset, stalled, take_overs

TP_A, TP_B = ("caliper", 0), ("caliper", 1)


def test_resume_from_the_earliest_record_not_known_to_be_done():
    assert resume_offset(Progress(committed=10, processed=14, end=20)) == 10  # faust is behind the ledger
    assert resume_offset(Progress(committed=30, processed=14, end=40)) == 15  # faust committed what never ran
    assert resume_offset(Progress(committed=None, processed=4, end=9)) == 4  # re-acknowledged, then committed
    assert resume_offset(Progress(committed=None, processed=8, end=9)) == 8  # all done, never committed
    assert resume_offset(Progress(committed=7, processed=None, end=9)) is None  # nothing processed here yet
    assert resume_offset(Progress(committed=None, processed=None, end=9)) is None  # from the log start


def test_a_partition_behind_its_end_without_progress_is_restarted():
    before = {TP_A: Progress(3, 5, 10), TP_B: Progress(3, 5, 10)}
    now = {TP_A: Progress(3, 5, 12), TP_B: Progress(4, 6, 12)}  # A stuck (its end grew), B moved
    assert stalled(before, now) == {TP_A: 3}


def test_caught_up_or_newly_seen_partitions_are_left_alone():
    assert stalled({TP_A: Progress(10, 9, 10)}, {TP_A: Progress(10, 9, 10)}) == {}  # done, nothing to read
    assert stalled({}, {TP_A: Progress(3, 5, 10)}) == {}  # first sight: no baseline yet
    assert stalled({TP_A: Progress(None, None, 4)}, {TP_A: Progress(None, None, 4)}) == {TP_A: None}


def test_records_committed_at_the_end_but_never_processed_are_read_again():
    assert stalled({TP_A: Progress(10, 6, 10)}, {TP_A: Progress(10, 6, 10)}) == {TP_A: 7}
    assert stalled({TP_A: Progress(10, None, 10)}, {TP_A: Progress(10, None, 10)}) == {TP_A: None}


def test_the_ledger_reads_its_table_copy_once_and_forgets_at_a_rebalance():
    from xpbank.runtime.faust.continuity import Ledger

    table = {("caliper", 0): 9}
    ledger = Ledger(lambda topic, partition: table.get((topic, partition)))
    ledger.follow_generation(1)
    assert ledger.last("caliper", 0) == 9 and ledger.last("caliper", 1) is None
    for offset in range(10, 16):
        ledger.processed("caliper", 0, offset)
    assert ledger.last("caliper", 0) == 15  # memory is ahead of the table copy (written at checkpoints)
    table[("caliper", 0)] = 40  # another worker moved it on while it was away
    ledger.follow_generation(1)
    assert ledger.last("caliper", 0) == 15
    ledger.follow_generation(2)
    assert ledger.last("caliper", 0) == 40


def test_a_partition_kicked_again_and_again_at_last_is_taken_over():
    counts, due = {}, set()
    for _ in range(TAKE_OVER_AFTER - 1):
        counts, due = take_overs(counts, {TP_A: 5, TP_B: 7})
        assert due == set()
    counts, due = take_overs(counts, {TP_A: 5})  # B moved: its count starts again
    assert due == {TP_A} and counts == {TP_A: 0}
    counts, due = take_overs(counts, {TP_B: 7})
    assert due == set() and counts == {TP_B: 1}
