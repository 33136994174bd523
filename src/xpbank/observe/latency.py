"""The worker's `xpbank_output_latency_seconds`: from an input record's timestamp to its
outputs acknowledged by the broker (published after the checkpoint that holds them).
A record stamped long ago (a backfill, a replay, a re-driven dead letter) lands in the
top buckets: that is its real age, not the worker's slowness."""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterable

NAME = "xpbank_output_latency_seconds"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


class Histogram:
    """Counts per bucket; observed on the engine's thread, rendered on the API's."""

    def __init__(self, bounds: tuple[float, ...] = BUCKETS) -> None:
        self.bounds, self.counts = bounds, [0] * (len(bounds) + 1)
        self.sum, self.count = 0.0, 0
        self._lock = threading.Lock()

    def observe_since(self, timestamps_ms: Iterable[int | None], now_ms: float | None = None) -> None:
        """One observation per output stamped `timestamp_ms` (None: unstamped, skipped)."""
        now_ms = time.time() * 1000 if now_ms is None else now_ms
        ages = [max(0.0, (now_ms - ts) / 1000) for ts in timestamps_ms if ts is not None]
        with self._lock:
            for age in ages:
                self.counts[bisect.bisect_left(self.bounds, age)] += 1
                self.sum += age
            self.count += len(ages)

    def render(self, name: str = NAME, help_: str = "input record timestamp to its outputs acknowledged by the broker") -> list[str]:
        with self._lock:
            counts, total, count = list(self.counts), self.sum, self.count
        lines, running = [f"# HELP {name} {help_}", f"# TYPE {name} histogram"], 0
        for bound, n in zip((*self.bounds, float("inf")), counts):
            running += n
            lines.append(f'{name}_bucket{{le="{"+Inf" if bound == float("inf") else f"{bound:g}"}"}} {running}')
        return lines + [f"{name}_sum {total:.6f}", f"{name}_count {count}"]
