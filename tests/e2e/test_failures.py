"""Poison input, and the helpers the failure tests share (see test_crash_and_scale_out.py)."""

from __future__ import annotations

import zlib

import orjson
import pytest

from tests.builders import at, course, heartbeat, line, mastery, resource, submission, time_spent_event
from tests.conftest import both_engines, xpbank
from tests.e2e.harness import (
    Worker, conflicting_revisions, current, expected_with_oracle, metrics, produce, topic_values, wait_caught_up,
    without_revision,
)
from tests.oracle import views
from tests.oracle_compare import SPEC_ATTEMPT_EVENTS, attempt_event

pytestmark = pytest.mark.e2e


def same_by_id(values: list[dict], key: str = "id") -> dict[str, dict]:
    """At-least-once may publish an output twice; it must be the same output."""
    by_id: dict[str, dict] = {}
    for value in values:
        assert by_id.setdefault(value[key], value) == value, f"two different outputs with {key}={value[key]}"
    return by_id


def assert_matches_simulate(settings, lines) -> None:
    """The worker's outputs are what the second oracle (tests/oracle/) decides for these
    records: the current facts, SPEC's attempt events, the final awards; and every
    attempt event equals `simulate`'s (which `expected` holds to the oracle)."""
    want, _, sim_outputs, oracle = expected_with_oracle(lines, settings)
    facts = topic_values(settings, "xp.facts.v1")
    assert without_revision(current(facts)) == without_revision(want)
    assert conflicting_revisions(facts) == {}
    attempts = same_by_id(topic_values(settings, "xp.attempts.v1"))
    want_attempts = {o.value.id: o.value.model_dump(mode="json") for o in sim_outputs if o.topic == "xp.attempts.v1"}
    assert attempts == want_attempts
    assert spec_attempt_events(attempts.values()) == spec_attempt_events(views.values(oracle, "xp.attempts.v1"))
    final_awards: dict[str, int] = {}
    for award in same_by_id(topic_values(settings, "xp.banked.v1")).values():  # ids include the revision
        final_awards[award["awardId"]] = max(final_awards.get(award["awardId"], 0), award["xp"])
    assert final_awards == views.final_awards(oracle) == {fid: f["xp"] for fid, f in want.items() if f["kind"] == "banked"}


def spec_attempt_events(values) -> list[bytes]:
    """AttemptOpened, AttemptCompleted and AttemptDiscarded (SPEC §3.2) without their ids,
    as a sorted multiset: the topic's order depends on partitions."""
    return sorted(orjson.dumps(attempt_event(v), option=orjson.OPT_SORT_KEYS) for v in values
                  if v["type"] in SPEC_ATTEMPT_EVENTS)


def chunks(lines: list[dict], parts: int) -> list[list[dict]]:
    size = -(-len(lines) // parts)
    return [lines[i : i + size] for i in range(0, len(lines), size)]


@both_engines
def test_poison_input_is_dead_lettered_while_the_worker_keeps_going(env, settings, tmp_path):
    curriculum = course("c1", [[resource("v1", 1, "Video", 5), resource("ex1", 2, "Exercise", 2)]])
    stale = submission("AnswerSubmitted", "u1", "ex1", 100, attempt=7, questionId="q", correct=True)
    future = line("learning.caliper.v1", "u1", time_spent_event("u1", "v1", 30, 9000), at(100))
    lines = [
        curriculum,
        line("learning.caliper.v1", "u1", None) | {"raw": '{"type": "TimeSpentEvent", "id": ', "timestamp": at(1)},
        heartbeat("u1", "v1", 120, 10),
        line("learning.caliper.v1", "u1", {"id": "urn:uuid:00000000-0000-4000-8000-000000000001", "type": "TimeSpentEvent", "action": "SpentTime"}, at(2)),
        line("learning.submissions.v1", "u1", None) | {"raw": "x" * 300_000, "timestamp": at(3)},
        line("learning.submissions.v1", "u1", None) | {"raw": "\udcff not utf-8".encode("utf-8", "surrogateescape").decode("latin-1"), "timestamp": at(4)},
        future,
        stale,
        submission("AttemptStarted", "u1", "ex1", 101, totalQuestions=1),
        submission("AnswerSubmitted", "u1", "ex1", 102, questionId="q1", correct=True),
        submission("AttemptFinalized", "u1", "ex1", 103),
        mastery("u1", "ex-nope", 104),
    ]
    assert xpbank(env, "topics", "create").returncode == 0
    worker = Worker(env, "w", tmp_path).start()
    try:
        produce(env, lines)
        wait_caught_up(settings)
        reasons = sorted(d["reason"] for d in topic_values(settings, "xp.dead-letters.v1"))
        assert reasons == sorted(["malformed_json", "malformed_json", "schema_violation", "payload_too_large",
                                  "future_event_time", "stale_attempt", "unknown_exercise"])
        assert {f["factId"]: f["xp"] for f in current(topic_values(settings, "xp.facts.v1")).values()} == {
            "exercise:u1:ex1:1": 3, "bank:u1:v1": 2}
        assert worker.alive() and "Traceback" not in worker.log()
        letters = {d["reason"]: d for d in topic_values(settings, "xp.dead-letters.v1")}
        assert letters["stale_attempt"]["eventId"] == stale["value"]["id"]
        assert letters["stale_attempt"]["topic"] == settings.topic_prefix + "learning.submissions.v1"
        assert isinstance(letters["stale_attempt"]["partition"], int) and isinstance(letters["stale_attempt"]["offset"], int)

        produce(env, [heartbeat("u1", "v1", 120, 50)])  # late: before T, after the decision
        wait_caught_up(settings)
        assert current(topic_values(settings, "xp.facts.v1"))["bank:u1:v1"]["xp"] == 4
        counted = metrics(worker)
        assert (counted["xpbank_awards_total"], counted["xpbank_award_revisions_total"]) == (1, 1)
        assert counted["xpbank_late_events_total"] == 1
        assert counted['xpbank_dead_letters_total{reason="future_event_time"}'] == 1
    finally:
        worker.stop()


@both_engines
def test_records_from_a_producer_with_another_partitioner_are_banked_as_from_murmur2(env, settings, tmp_path):
    """librdkafka's default partitioner (CRC32) puts a learner's records on other partitions
    than murmur2 (the Java client's, aiokafka's, the re-key topic's). The worker routes
    them to their learner's partition, so one learner's state is never split: the facts
    equal simulate's, and the metric counts the routed records."""
    from confluent_kafka import Producer

    from tests.e2e.test_parity_and_replay import classroom_log
    from xpbank.cli.records import read_lines
    from xpbank.kafka.connection import librdkafka_config
    from xpbank.runtime.records import key_partition

    lines = classroom_log(learners=8, seed=47)
    records = list(read_lines([orjson.dumps(line) for line in lines], settings.topic_prefix))
    misplaced = [r for r in records if r.key and r.topic != "learning.curriculum.v1"  # a global view, not routed
                 and zlib.crc32(r.key) % settings.partitions != key_partition(r.key, settings.partitions)]
    assert misplaced, "CRC32 and murmur2 agree on every key: the scenario did not happen"
    assert xpbank(env, "topics", "create").returncode == 0
    worker = Worker(env, "w", tmp_path).start()
    try:
        producer = Producer(librdkafka_config(settings) | {"partitioner": "consistent_random", "linger.ms": 5})
        for r in records:
            producer.produce(r.topic_full_name, key=r.key, value=r.value, timestamp=int(r.timestamp.timestamp() * 1000))
        assert producer.flush(30) == 0
        wait_caught_up(settings)
        assert_matches_simulate(settings, lines)
        assert metrics(worker)["xpbank_misplaced_records_total"] >= len(misplaced)
        assert "their producer's partitioner is not murmur2" in worker.log()
    finally:
        worker.stop()
