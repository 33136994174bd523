"""Faults on purpose, for the tests that prove the recovery claims (XPBANK_FAILPOINT):

- `crash-after-checkpoint:N`: a worker exits abruptly (as kill -9 would) at its N-th
  checkpoint that holds outputs, once the checkpoint is durable and before its outbox is
  published (runtime/outbox.py): the one moment where outputs exist only in the state.
- `stall-partition:P` (Faust engine): the consumer stops fetching caliper partition P
  after its first records and sending it back does not resume it, as faust-streaming's
  rebalance bugs leave a partition; the continuity layer must take it over.

Unset (the default), they cost one comparison per checkpoint or record."""

from __future__ import annotations

import logging
import os

log = logging.getLogger("xpbank")
CRASH, STALL = "crash-after-checkpoint", "stall-partition"


class Failpoint:
    def __init__(self, spec: str | None = None) -> None:
        spec = os.environ.get("XPBANK_FAILPOINT", "") if spec is None else spec
        name, _, number = spec.partition(":")
        if spec and (name not in (CRASH, STALL) or not number.isdigit() or (name == CRASH and int(number) < 1)):
            raise ValueError(f"XPBANK_FAILPOINT={spec!r}: use {CRASH}:N (N >= 1) or {STALL}:P")
        self.remaining = int(number) if name == CRASH else 0
        self.stalled_partition = int(number) if name == STALL else None

    def hit(self) -> bool:
        """Count a durable checkpoint that holds outputs: True for the N-th."""
        if self.remaining:
            self.remaining -= 1
            return not self.remaining
        return False

    def crash(self) -> None:
        """Exit at once, as kill -9 would."""
        log.warning("failpoint %s: exiting before the outbox is published", CRASH)
        logging.shutdown()
        os._exit(137)

    def stalls(self, topic: str, partition: int, caliper: str) -> bool:
        """Whether (topic, partition) is the caliper partition this failpoint stalls."""
        return partition == self.stalled_partition and topic == caliper
