"""A fault on purpose, for the tests that prove the crash claims: with
XPBANK_FAILPOINT=crash-after-checkpoint:N a worker exits abruptly (as kill -9 would) at
its N-th checkpoint that holds outputs, once the checkpoint is durable and before its
outbox is published (runtime/outbox.py): the one moment where outputs exist only in the
state. Unset (the default), it costs one comparison per checkpoint."""

from __future__ import annotations

import logging
import os

log = logging.getLogger("xpbank")
NAME = "crash-after-checkpoint"


class Failpoint:
    def __init__(self, spec: str | None = None) -> None:
        spec = os.environ.get("XPBANK_FAILPOINT", "") if spec is None else spec
        name, _, count = spec.partition(":")
        if spec and (name != NAME or not count.isdigit() or int(count) < 1):
            raise ValueError(f"XPBANK_FAILPOINT={spec!r}: use {NAME}:N (N >= 1)")
        self.remaining = int(count) if spec else 0

    def hit(self) -> bool:
        """Count a durable checkpoint that holds outputs: True for the N-th."""
        if self.remaining:
            self.remaining -= 1
            return not self.remaining
        return False

    def crash(self) -> None:
        """Exit at once, as kill -9 would."""
        log.warning("failpoint %s: exiting before the outbox is published", NAME)
        logging.shutdown()
        os._exit(137)
