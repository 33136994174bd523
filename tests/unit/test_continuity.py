"""The stall watchdog's decision (xpbank.continuity), without a broker."""

from __future__ import annotations

from xpbank.continuity import Progress, resume_offset, stalled

TP_A, TP_B = ("caliper", 0), ("caliper", 1)


def test_resume_from_the_earliest_record_not_known_to_be_done():
    assert resume_offset(Progress(committed=10, processed=14, end=20)) == 10  # faust is behind the ledger
    assert resume_offset(Progress(committed=30, processed=14, end=40)) == 15  # faust committed what never ran
    assert resume_offset(Progress(committed=None, processed=4, end=9)) == 5
    assert resume_offset(Progress(committed=7, processed=None, end=9)) == 7
    assert resume_offset(Progress(committed=None, processed=None, end=9)) is None  # from the log start


def test_a_partition_behind_its_end_without_progress_is_restarted():
    before = {TP_A: Progress(3, 5, 10), TP_B: Progress(3, 5, 10)}
    now = {TP_A: Progress(3, 5, 12), TP_B: Progress(4, 6, 12)}  # A stuck (its end grew), B moved
    assert stalled(before, now) == {TP_A: 3}


def test_caught_up_or_newly_seen_partitions_are_left_alone():
    assert stalled({TP_A: Progress(10, 9, 10)}, {TP_A: Progress(10, 9, 10)}) == {}  # done, nothing to read
    assert stalled({}, {TP_A: Progress(3, 5, 10)}) == {}  # first sight: no baseline yet
    assert stalled({TP_A: Progress(None, None, 4)}, {TP_A: Progress(None, None, 4)}) == {TP_A: None}
