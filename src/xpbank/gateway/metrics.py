"""The gateway's Prometheus metrics: requests by route and status, events in, records
out, produce latency. Labels carry routes, statuses, kinds and topics only: never a token,
a sensor or a learner."""

from __future__ import annotations

import bisect
from collections import Counter

# produce latency buckets, seconds (from the first record handed to the producer to the
# broker's last acknowledgement)
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    def __init__(self, bounds: tuple[float, ...] = BUCKETS) -> None:
        self.bounds, self.counts = bounds, [0] * (len(bounds) + 1)
        self.sum, self.count = 0.0, 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def samples(self, name: str) -> list[str]:
        lines, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts):
            running += count
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'{name}_bucket{{le="{le}"}} {running}')
        return lines + [f"{name}_sum {self.sum:.6f}", f"{name}_count {self.count}"]


class GatewayMetrics:
    def __init__(self) -> None:
        self.requests: Counter = Counter()  # (route, status)
        self.events_in: Counter = Counter()  # kind
        self.records_out: Counter = Counter()  # topic
        self.produce_seconds = Histogram()
        self.timeouts: Counter = Counter()  # phase: head (closed by the server), body (408)
        self.auth_failures = 0
        self.bytes_out = 0

    def render(self, buffered_bytes: int, buffer_bytes: int, broker_up: bool, limited: Counter | None = None,
               in_flight: int = 0) -> str:
        """Prometheus text exposition (version 0.0.4)."""
        lines: list[str] = []

        def family(name: str, kind: str, help_: str, samples: list[str]) -> None:
            lines.extend([f"# HELP {name} {help_}", f"# TYPE {name} {kind}", *samples])

        family("xpbank_gateway_requests_total", "counter", "HTTP requests answered, per route and status",
               [f'xpbank_gateway_requests_total{{route="{r}",status="{s}"}} {n}'
                for (r, s), n in sorted(self.requests.items())])
        family("xpbank_gateway_events_in_total", "counter", "events received in accepted requests, per kind",
               [f'xpbank_gateway_events_in_total{{kind="{k}"}} {n}' for k, n in sorted(self.events_in.items())])
        family("xpbank_gateway_records_out_total", "counter", "records acknowledged by the broker, per topic",
               [f'xpbank_gateway_records_out_total{{topic="{t}"}} {n}' for t, n in sorted(self.records_out.items())])
        family("xpbank_gateway_produce_seconds", "histogram", "time from producing a request's records to their last ack",
               self.produce_seconds.samples("xpbank_gateway_produce_seconds"))
        family("xpbank_gateway_buffered_bytes", "gauge", "request bytes waiting for the broker",
               [f"xpbank_gateway_buffered_bytes {buffered_bytes}"])
        family("xpbank_gateway_buffer_bytes", "gauge", "XPBANK_GATEWAY_BUFFER_BYTES", [f"xpbank_gateway_buffer_bytes {buffer_bytes}"])
        family("xpbank_gateway_broker_up", "gauge", "1 when the broker answered the last check",
               [f"xpbank_gateway_broker_up {int(broker_up)}"])
        family("xpbank_gateway_requests_in_flight", "gauge", "requests being handled (bodies read, records sent)",
               [f"xpbank_gateway_requests_in_flight {in_flight}"])
        family("xpbank_gateway_bytes_out_total", "counter", "bytes of records (keys and values) acknowledged",
               [f"xpbank_gateway_bytes_out_total {self.bytes_out}"])
        limited = limited or Counter()
        family("xpbank_gateway_rate_limited_total", "counter",
               "requests refused 429 per limit: requests, bytes (per token and second), reads (uploads at once)",
               [f'xpbank_gateway_rate_limited_total{{limit="{k}"}} {limited.get(k, 0)}'
                for k in ("requests", "bytes", "reads")])
        family("xpbank_gateway_timeouts_total", "counter",
               "requests cut by a timeout: head (closed by the server), body (answered 408)",
               [f'xpbank_gateway_timeouts_total{{phase="{k}"}} {self.timeouts.get(k, 0)}' for k in ("head", "body")])
        family("xpbank_gateway_auth_failures_total", "counter", "requests with an unknown bearer token",
               [f"xpbank_gateway_auth_failures_total {self.auth_failures}"])
        return "\n".join(lines) + "\n"
