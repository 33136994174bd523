"""A sink's Prometheus metrics and readiness. Labels carry the sink's name, statuses and
partitions only: never a token, a learner or a URL."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Health:
    """Ready (`/healthz` 200) while the broker and the server both answer. A retried
    request marks the server failing until a request succeeds; a failed Kafka step marks
    the broker down until one succeeds."""

    broker_up: bool = False
    broker_problem: str = "starting"
    server_failing_since: float | None = None
    server_problem: str = ""

    def broker_answered(self) -> None:
        self.broker_up, self.broker_problem = True, ""

    def broker_failed(self, problem: str) -> None:
        self.broker_up, self.broker_problem = False, problem

    def server_answered(self) -> None:
        self.server_failing_since, self.server_problem = None, ""

    def server_failed(self, problem: str) -> None:
        if self.server_failing_since is None:
            self.server_failing_since = time.monotonic()
        self.server_problem = problem

    def status(self) -> tuple[int, dict]:
        server_up = self.server_failing_since is None
        body = {"ready": self.broker_up and server_up, "broker": self.broker_up, "server": server_up}
        if self.broker_problem:
            body["brokerProblem"] = self.broker_problem
        if not server_up:
            body["serverProblem"] = self.server_problem
            body["serverFailingSeconds"] = round(time.monotonic() - self.server_failing_since, 1)
        return (200 if body["ready"] else 503), body


@dataclass
class SinkMetrics:
    sink: str
    requests: Counter = field(default_factory=Counter)  # status ("200", "503", "error", "token_error") -> count
    facts: int = 0  # fact records read
    written: int = 0  # results written (oneroster) or events acknowledged (caliper)
    xp_earned: int = 0  # the sum of xpEarned acknowledged (caliper)
    skipped: Counter = field(default_factory=Counter)  # reason -> facts that needed no request
    dead_letters: int = 0
    retries: int = 0
    lag: dict[int, int] = field(default_factory=dict)  # partition -> records not yet written or dead-lettered

    def render(self, health: Health) -> str:
        s = f'sink="{self.sink}"'
        lines: list[str] = []

        def family(name: str, kind: str, help_: str, samples: list[str]) -> None:
            lines.extend([f"# HELP {name} {help_}", f"# TYPE {name} {kind}", *samples])

        family("xpbank_sink_lag", "gauge", "records of xp.facts.v1 not yet written or dead-lettered, per partition",
               [f'xpbank_sink_lag{{{s},partition="{p}"}} {n}' for p, n in sorted(self.lag.items())])
        family("xpbank_sink_requests_total", "counter", "requests answered, per status (error: no answer)",
               [f'xpbank_sink_requests_total{{{s},status="{k}"}} {n}' for k, n in sorted(self.requests.items())])
        family("xpbank_sink_facts_total", "counter", "fact records read", [f"xpbank_sink_facts_total{{{s}}} {self.facts}"])
        family("xpbank_sink_written_total", "counter", "results written / events acknowledged by the server",
               [f"xpbank_sink_written_total{{{s}}} {self.written}"])
        family("xpbank_sink_skipped_total", "counter", "facts that needed no request, per reason",
               [f'xpbank_sink_skipped_total{{{s},reason="{k}"}} {n}' for k, n in sorted(self.skipped.items())])
        family("xpbank_sink_dead_letters_total", "counter", "facts dead-lettered on xp.sink-dead-letters.v1",
               [f"xpbank_sink_dead_letters_total{{{s}}} {self.dead_letters}"])
        family("xpbank_sink_retries_total", "counter", "requests retried (network error, 401, 408, 429, 5xx)",
               [f"xpbank_sink_retries_total{{{s}}} {self.retries}"])
        family("xpbank_sink_xp_earned_total", "counter", "xpEarned the server acknowledged",
               [f"xpbank_sink_xp_earned_total{{{s}}} {self.xp_earned}"])
        family("xpbank_sink_broker_up", "gauge", "1 when the last Kafka step succeeded",
               [f"xpbank_sink_broker_up{{{s}}} {int(health.broker_up)}"])
        family("xpbank_sink_server_up", "gauge", "1 unless requests are being retried",
               [f"xpbank_sink_server_up{{{s}}} {int(health.server_failing_since is None)}"])
        return "\n".join(lines) + "\n"
