"""The HTTP API's content as pure functions: problem documents, the readiness answer and
the Prometheus text (the views themselves are the read models', read/projection.py). `server.py` reads and hands them out."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from xpbank.contract.outputs import REASONS
from xpbank.observe.latency import Histogram


def problem(status: int, detail: str) -> dict:
    """An RFC 7807 problem document."""
    return {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}


def health(recovered: bool, rebalancing: bool, curriculum_ready: bool, broker_up: bool | None = True,
           broker_problem: str = "") -> tuple[int, dict]:
    """A worker's readiness: it can process (the broker answers, state recovered, no
    rebalance, the curriculum loaded). `broker_up` None: not known yet."""
    ready = recovered and not rebalancing and curriculum_ready and bool(broker_up)
    body = {"ready": ready, "brokerReachable": broker_up, "tablesRecovered": recovered, "rebalancing": rebalancing,
            "curriculumLoaded": curriculum_ready}
    if broker_problem:
        body["brokerProblem"] = broker_problem
    return (200 if ready else 503), body


def projector_health(projector) -> dict:
    """What a worker's /healthz says of the projector it runs (None: it runs none). The
    read models never make a worker unready: decisions go on without them."""
    if projector is None:
        return {}
    health = projector.health
    state = "rebuilding" if health.rebuilding else "ready" if health.ready else "unavailable"
    return {"readModels": state, "redisReachable": health.redis_up,
            **({"readModelsProblem": health.problem} if health.problem else {})}


def projector_gauges(projector) -> tuple[dict, dict | None]:
    """The projector's gauges and lag per partition for /metrics (none without one)."""
    if projector is None:
        return {}, None
    health = projector.health
    return ({"xpbank_redis_up": None if health.redis_up is None else int(health.redis_up),
             "xpbank_read_models_rebuilding": int(health.rebuilding),
             "xpbank_read_models_ready": int(health.ready)}, health.lag)


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
    "engine_restarts": ("xpbank_engine_restarts_total",
                        "times the Quix engine was started again inside the worker (a client error fatal to "
                        "librdkafka, a record not delivered within a minute)"),
    "records_misplaced": ("xpbank_misplaced_records_total",
                          "records keyed by learner found off their murmur2 partition (a producer's partitioner), routed"),
    "read_models_rebuilds": ("xpbank_read_models_rebuilds_total",
                             "rebuilds of the read models from the topics this process ran (Redis had lost them)"),
    "read_models_losses": ("xpbank_read_models_losses_total",
                           "times Redis held less than this projector had applied (records projected again)"),
}
GAUGES = {  # gauge name -> help; a None value is left out (not known by this process)
    "xpbank_broker_up": "1 when the broker answered this process's last check",
    "xpbank_redis_up": "1 when Redis answered this process's last request",
    "xpbank_read_models_rebuilding": "1 while this process rebuilds the read models from the topics",
    "xpbank_read_models_ready": "1 when the read models in Redis are complete (not lost, not being rebuilt)",
}


def render_metrics(counts: Mapping[str, int], lag: Mapping[tuple[str, int], int] | None, sizes: Mapping[str, int],
                   latency: Histogram | None = None, ready: bool | None = None,
                   gauges: Mapping[str, float | None] | None = None,
                   projector_lag: Mapping[tuple[str, int], int] | None = None) -> str:
    """Prometheus text exposition (version 0.0.4). `lag`: the worker group's, per
    (topic, partition); `latency`: record timestamp to outputs published; `ready`: what
    /healthz says (a gauge, so that "not ready for long" can be alerted on); `gauges`:
    the broker, Redis and read models as this process sees them; `projector_lag`: the
    projector's, per (topic, partition)."""
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
    family("xpbank_background_retries_total", "counter",
           "failures of a background task (broker or Redis away) after which it was started again, per task",
           [(_labels(task=t), v) for t, v in labelled("background_retries:").items()])
    for name, value in (gauges or {}).items():
        if value is not None:
            family(name, "gauge", GAUGES[name], [("", float(value))])
    if projector_lag is not None:
        family("xpbank_projector_lag", "gauge", "output records the projector has not applied yet, per partition",
               [(_labels(topic=t, partition=str(p)), v) for (t, p), v in sorted(projector_lag.items())])
    known = {"records_in:", "records_out:", "dead_letters:", "projector_in:", "background_retries:"}
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
