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

    def published(self, acknowledge=None) -> None:
        """Call after a record's outputs were published, before its state is written;
        `acknowledge` waits for the broker's acknowledgement where publishing does not."""
        if self.remaining:
            self.remaining -= 1
            if not self.remaining:
                if acknowledge is not None:
                    acknowledge()
                log.warning("failpoint crash-after-publish: exiting before the state is written")
                logging.shutdown()
                os._exit(137)
