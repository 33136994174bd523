"""A fault on purpose, for the tests that prove the crash claims: with
XPBANK_FAILPOINT=crash-after-publish:N a worker exits abruptly (as kill -9 would) right
after the broker acknowledged the outputs of the N-th record that had outputs, before
that record's state is written. Unset (the default), it costs one comparison."""

from __future__ import annotations

import logging
import os

log = logging.getLogger("xpbank")


class Failpoint:
    def __init__(self, spec: str | None = None) -> None:
        spec = os.environ.get("XPBANK_FAILPOINT", "") if spec is None else spec
        name, _, count = spec.partition(":")
        if spec and (name != "crash-after-publish" or not count.isdigit()):
            raise ValueError(f"XPBANK_FAILPOINT={spec!r}: use crash-after-publish:N")
        self.remaining = int(count) if spec else 0

    def hit(self) -> bool:
        """Count a record whose outputs were published: True for the N-th."""
        if self.remaining:
            self.remaining -= 1
            return not self.remaining
        return False

    def crash(self) -> None:
        """Exit at once, as kill -9 would (the caller made sure the outputs were acknowledged)."""
        log.warning("failpoint crash-after-publish: exiting before the state is written")
        logging.shutdown()
        os._exit(137)
