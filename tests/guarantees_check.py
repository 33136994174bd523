"""The guarantees check: each guarantee turned off in the source, and a named test shown
to fail for it (`make check-guarantees`; CI runs it after the slow tier).

A break is one exact fragment of one source file replaced by code without the
guarantee. The fragment must be found exactly once: code that moved makes the check
fail, naming the break to update, rather than pass without breaking anything. The file
is restored after each break, also on Ctrl-C or SIGTERM. Each break's tests must fail
(pytest exit status 1): passing means the guarantee is not tested; an error (status 2
to 5: collection, usage, nothing collected) means the break is wrong.

The named tests pass on the unbroken code: `make test` runs them before this.

    python -m tests.guarantees_check            # every break
    python -m tests.guarantees_check --list     # what each break turns off
    python -m tests.guarantees_check lateness   # some of them, by name
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "xpbank"
PER_BREAK_TIMEOUT = 900  # seconds: a run that hangs is reported, not waited for


@dataclass(frozen=True)
class Break:
    name: str
    turns_off: str
    path: str  # under src/xpbank
    fragment: str
    replacement: str
    tests: tuple[str, ...]


BREAKS = (
    Break("outbox", "a restarted worker publishes the outbox a crash left after its checkpoint (one policy, both engines)",
          "runtime/outbox.py",
          "    return decode(port.get_bytes(outbox_key(partition), prefix=OUTBOX_PREFIX))\n",
          "    return []\n",
          ("tests/e2e/test_crash_and_scale_out.py::"
           "test_a_crash_after_a_checkpoint_before_its_outputs_leave_publishes_them_on_restart[faust]",
           "tests/e2e/test_crash_and_scale_out.py::"
           "test_a_crash_after_a_checkpoint_before_its_outputs_leave_publishes_them_on_restart[quix]")),
    Break("ledger", "a record delivered again after it was processed is skipped",
          "runtime/faust/continuity.py",
          "        if last is not None and message.offset <= last:  # redelivered after a crash or rebalance\n",
          "        if False:\n",
          ("tests/e2e/test_continuity.py::test_records_delivered_again_are_skipped_by_the_ledger",)),
    Break("watchdog", "a partition that stalls behind its end is sent back to its first record not done",
          "runtime/faust/continuity.py",
          "        kicks = stalled(self.last_check, now)\n",
          "        kicks = {}\n",
          ("tests/e2e/test_continuity.py::"
           "test_partitions_committed_to_their_end_but_never_processed_are_read_again_by_the_watchdog",)),
    Break("take-over", "a partition that sending back does not resume is read by the agent itself",
          "runtime/faust/continuity.py",
          "    due = {tp for tp, n in counts.items() if n >= TAKE_OVER_AFTER}\n",
          "    due = set()\n",
          ("tests/e2e/test_continuity.py::test_a_partition_that_sending_back_does_not_resume_is_taken_over",)),
    Break("murmur2 routing", "a record off its learner's murmur2 partition is routed to it",
          "runtime/records.py",
          "        if key and key_partition(key, partitions) != partition:\n",
          "        if False:\n",
          ("tests/e2e/test_failures.py::"
           "test_records_from_a_producer_with_another_partitioner_are_banked_as_from_murmur2[faust]",)),
    Break("dedupe by id", "a heartbeat whose id was accepted before counts once",
          "core/time_spent.py",
          "        if entries and entries.find(key) != -1 and has_event(entries, key):\n",
          "        if False:\n",
          ("tests/unit/test_reasons.py::test_duplicates_are_counted_not_dead_lettered",
           "tests/unit/test_banking_seeds.py::test_redelivered_records_never_award_twice")),
    Break("lateness", "a heartbeat older than the learner's watermark minus the lateness bound is refused",
          "core/time_spent.py",
          "        if watermark_us is not None and t_us < watermark_us - lateness_us:\n",
          "        if False:\n",
          ("tests/unit/test_reasons.py::test_too_late_is_relative_to_the_users_watermark_and_the_bound_is_configurable",)),
)


class BreakOutOfDate(Exception):
    pass


class Restored:
    """The file's text put back on exit, Ctrl-C or SIGTERM."""

    def __init__(self, path: Path) -> None:
        self.path, self.original = path, path.read_text()

    def __enter__(self) -> str:
        self.previous = signal.signal(signal.SIGTERM, self._on_term)
        return self.original

    def _on_term(self, *_) -> None:
        raise KeyboardInterrupt

    def __exit__(self, *_) -> None:
        self.path.write_text(self.original)
        signal.signal(signal.SIGTERM, self.previous)


def run_break(one: Break, pytest_args: list[str]) -> tuple[bool, str]:
    """(caught, what happened)."""
    path = SRC / one.path
    with Restored(path) as original:
        found = original.count(one.fragment)
        if found != 1:
            raise BreakOutOfDate(f"{one.name}: the fragment is found {found} times in src/xpbank/{one.path} "
                                 f"(exactly once wanted): the code moved; update this break")
        path.write_text(original.replace(one.fragment, one.replacement))
        command = [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "-m", "", *pytest_args,
                   *one.tests]
        try:
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=PER_BREAK_TIMEOUT,
                                  env=os.environ | {"COLUMNS": "250"})  # the failures' messages whole
        except subprocess.TimeoutExpired:
            return False, f"its tests ran over {PER_BREAK_TIMEOUT} s"
    failed = [line[len("FAILED "):][:220] for line in done.stdout.splitlines() if line.startswith("FAILED ")]
    if done.returncode == 1 and failed:
        return True, "\n      ".join(failed)
    if done.returncode == 0:
        return False, "NOT CAUGHT: its tests pass with the guarantee off"
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
    return False, f"pytest exited {done.returncode} (not a failing test):\n{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="breaks to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the breaks and their tests")
    parser.add_argument("--pytest-args", default="", help="more pytest arguments, e.g. --basetemp=/tmp/g")
    args = parser.parse_args(argv)
    chosen = [b for b in BREAKS if not args.names or b.name in args.names]
    unknown = set(args.names) - {b.name for b in BREAKS}
    if unknown:
        parser.error(f"no break named {', '.join(sorted(unknown))}; --list shows them")
    if args.list:
        for one in chosen:
            print(f"{one.name}: turns off: {one.turns_off}\n  in src/xpbank/{one.path}\n  "
                  + "\n  ".join(one.tests))
        return 0
    missed = []
    for number, one in enumerate(chosen, 1):
        print(f"[{number}/{len(chosen)}] {one.name}: off ({one.turns_off}) ...", flush=True)
        started = time.monotonic()
        try:
            caught, what = run_break(one, args.pytest_args.split())
        except BreakOutOfDate as out_of_date:
            caught, what = False, str(out_of_date)
        print(f"    {'caught' if caught else 'MISSED'} in {time.monotonic() - started:.0f} s: {what}", flush=True)
        if not caught:
            missed.append(one.name)
    if missed:
        print(f"guarantees check: {len(missed)} of {len(chosen)} breaks not caught: {', '.join(missed)}")
        return 1
    print(f"guarantees check: every break caught ({len(chosen)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
