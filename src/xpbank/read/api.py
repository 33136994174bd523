"""The HTTP API's content as pure functions: an attempt's view, an explanation, the
readiness answer and the Prometheus text. The Faust pages in `web.py` only read state
and hand it here."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from http import HTTPStatus

from xpbank.core.attempts import AttemptState
from xpbank.core.banking import PairState
from xpbank.contract.outputs import REASONS
from xpbank.processing.state import StateStore


def attempt_view(user: str, exercise: str, state: AttemptState | None) -> tuple[int, dict]:
    """The open attempt (number, answered, correct), else the last completed one."""
    head = {"userSourcedId": user, "exerciseSourcedId": exercise}
    if state is not None and state.open is not None:
        attempt = state.open
        counted = [ok for q, ok in attempt.answers if q not in attempt.reported]
        return 200, head | {
            "status": "open", "attempt": attempt.number, "answered": len(counted), "correct": sum(counted),
            "reported": len(attempt.reported), "totalQuestions": attempt.total_questions,
        }
    if state is not None and state.last_completed is not None:
        done = state.last_completed
        return 200, head | {
            "status": "completed", "attempt": done.number, "answered": done.total, "correct": done.correct,
            "total": done.total, "accuracy": done.accuracy, "exerciseXp": done.exercise_xp, "mastered": done.mastered,
        }
    return 404, head | {"status": "none", "nextAttempt": state.current_number if state else 1}


class UserPairs(Mapping[str, PairState]):
    """One learner's (resource -> pair state), read on demand from the store (the
    explanation only looks up the resources of its window)."""

    def __init__(self, store: StateStore, user: str) -> None:
        self.store, self.user = store, user

    def __getitem__(self, resource: str) -> PairState:
        pair = self.store.pair(self.user, resource)
        if pair is None:
            raise KeyError(resource)
        return pair

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


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
    "redelivered": ("xpbank_redelivered_records_total", "records processed before and skipped"),
}


def render_metrics(counts: Mapping[str, int], lag: Mapping[str, int] | None, sizes: Mapping[str, int]) -> str:
    """Prometheus text exposition (version 0.0.4)."""
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
        family("xpbank_consumer_lag", "gauge", "input records not yet committed by the worker group, per topic",
               [(_labels(topic=t), v) for t, v in sorted(lag.items())])
    family("xpbank_table_keys", "gauge", "keys held in this worker's tables",
           [(_labels(table=t), v) for t, v in sorted(sizes.items())])
    return "\n".join(lines) + "\n"
