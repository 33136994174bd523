"""The HTTP API's content as pure functions: an attempt's view, problem documents, the
readiness answer and the Prometheus text. `server.py` reads and hands them out."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from xpbank.contract.outputs import REASONS
from xpbank.core.attempts import AttemptState, progress
from xpbank.read.latency import Histogram
from xpbank.read.projection import completed_view, no_attempt_view, open_view


def attempt_view(user: str, exercise: str, state: AttemptState | None) -> tuple[int, dict]:
    """What `GET .../attempt` answers for a worker's attempt state (the read models hold
    the same views, built from the attempt events): the open attempt, else the last
    completed one, else 404."""
    if state is not None and state.open is not None:
        answered, correct, reported = progress(state.open)
        return 200, open_view(user, exercise, state.open.number, answered, correct, reported, state.open.total_questions)
    if state is not None and state.last_completed is not None:
        done = state.last_completed
        return 200, completed_view(user, exercise, done.number, done.correct, done.total, done.accuracy,
                                   done.exercise_xp, done.mastered)
    return 404, no_attempt_view(user, exercise)


def problem(status: int, detail: str) -> dict:
    """An RFC 7807 problem document."""
    return {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}


def health(recovered: bool, rebalancing: bool, curriculum_ready: bool) -> tuple[int, dict]:
    ready = recovered and not rebalancing and curriculum_ready
    body = {"ready": ready, "tablesRecovered": recovered, "rebalancing": rebalancing, "curriculumLoaded": curriculum_ready}
    return (200 if ready else 503), body


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


SIMPLE = {  # counter name -> (metric, help); everything else goes to xpbank_events_total{name}
    "late_events": ("xpbank_late_events_total", "TimeSpent accepted after its resource was decided, re-deciding it"),
    "awards": ("xpbank_awards_total", "banked-XP awards (revision 1)"),
    "award_revisions": ("xpbank_award_revisions_total", "banked-XP awards raised by a late event (revision > 1)"),
    "projector_applied": ("xpbank_projector_upserts_applied_total", "read-model upserts that changed Redis"),
    "projector_errors": ("xpbank_projector_restarts_total", "projector restarts after an error"),
    "refetched": ("xpbank_refetched_records_total", "records the consumer skipped, read directly by the agent"),
    "stall_restarts": ("xpbank_stall_restarts_total", "partitions sent back after making no progress"),
    "stall_take_overs": ("xpbank_stall_take_overs_total",
                         "stalled partitions read directly and committed after sending them back failed"),
    "redelivered": ("xpbank_redelivered_records_total", "records processed before and skipped"),
    "records_misplaced": ("xpbank_misplaced_records_total",
                          "records keyed by learner found off their murmur2 partition (a producer's partitioner), routed"),
}


def render_metrics(counts: Mapping[str, int], lag: Mapping[tuple[str, int], int] | None, sizes: Mapping[str, int],
                   latency: Histogram | None = None, ready: bool | None = None) -> str:
    """Prometheus text exposition (version 0.0.4). `lag`: the worker group's, per
    (topic, partition); `latency`: record timestamp to outputs published; `ready`: what
    /healthz says (a gauge, so that "not ready for long" can be alerted on)."""
    lines: list[str] = []

    def family(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
        lines.extend([f"# HELP {name} {help_}", f"# TYPE {name} {kind}"])
        lines.extend(f"{name}{labels} {value:g}" for labels, value in samples)

    def labelled(prefix: str) -> dict[str, int]:
        return {k[len(prefix):]: v for k, v in sorted(counts.items()) if k.startswith(prefix)}

    family("xpbank_records_in_total", "counter", "input records processed, per topic",
           [(_labels(topic=t), v) for t, v in labelled("records_in:").items()])
    family("xpbank_records_out_total", "counter", "output records published, per topic",
           [(_labels(topic=t), v) for t, v in labelled("records_out:").items()])
    letters = labelled("dead_letters:")
    family("xpbank_dead_letters_total", "counter", "records dead-lettered, per reason",
           [(_labels(reason=r), letters.get(r, 0)) for r in REASONS])
    family("xpbank_clamped_seconds_total", "counter", "claimed active seconds not credited by the credit guard",
           [("", counts.get("clamped_ms", 0) / 1000)])
    for key, (name, help_) in SIMPLE.items():
        family(name, "counter", help_, [("", counts.get(key, 0))])
    family("xpbank_projector_records_total", "counter", "output records read by the projector, per topic",
           [(_labels(topic=t), v) for t, v in labelled("projector_in:").items()])
    known = {"records_in:", "records_out:", "dead_letters:", "projector_in:"}
    rest = {k: v for k, v in sorted(counts.items())
            if k not in SIMPLE and k != "clamped_ms" and not any(k.startswith(p) for p in known)}
    family("xpbank_events_total", "counter", "other counted outcomes (duplicates, redelivered, ...)",
           [(_labels(name=k), v) for k, v in rest.items()])
    if lag is not None:
        family("xpbank_consumer_lag", "gauge", "input records not yet committed by the worker group, per partition",
               [(_labels(topic=t, partition=str(p)), v) for (t, p), v in sorted(lag.items())])
    family("xpbank_table_keys", "gauge", "keys held in this worker's tables",
           [(_labels(table=t), v) for t, v in sorted(sizes.items())])
    if latency is not None:
        lines.extend(latency.render())
    if ready is not None:
        family("xpbank_worker_ready", "gauge", "1 while /healthz answers 200 (state recovered, no rebalance, curriculum loaded)",
               [("", int(ready))])
    return "\n".join(lines) + "\n"
