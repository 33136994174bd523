"""What each topic keeps (issue 9): the registry's configs, and the plan that converges
the broker's topics to them and reports every drift."""

from __future__ import annotations

import pytest

from xpbank.config import ConfigError, Settings
from xpbank.runtime.topology import all_setups, internal_setups
from xpbank.kafka.views import Described, Drift, finite_retention, plan
from xpbank.contract.topics import INPUTS, TopicSetup

FOREVER = {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}


def setups(**env: str) -> dict[str, TopicSetup]:
    return {s.name: s for s in all_setups(Settings.from_env({"XPBANK_PARTITIONS": "4", **env}))}


def test_inputs_and_the_rekey_topic_keep_everything_outputs_keep_the_output_retention():
    topics = setups()
    for name in ("learning.caliper.v1", "learning.submissions.v1", "learning.mastery.v1", "xpbank-g1-rekeyed"):
        assert topics[name].config == FOREVER, name
    for name in ("xp.banked.v1", "xp.attempts.v1", "xp.dead-letters.v1"):
        assert topics[name].config == FOREVER, name  # default: for ever
    week = setups(XPBANK_OUTPUT_RETENTION_DAYS="7")
    assert week["xp.banked.v1"].config["retention.ms"] == str(7 * 86_400_000)
    assert week["learning.caliper.v1"].config == FOREVER  # inputs never follow it


def test_compacted_topics_and_changelogs_stay_compacted():
    topics = setups()
    assert topics["learning.curriculum.v1"].config == {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
    assert topics["xp.facts.v1"].config == {"cleanup.policy": "compact", "min.compaction.lag.ms": "86400000"}
    changelogs = [s for s in internal_setups(Settings.from_env({})) if s.role == "changelog"]
    assert {s.name for s in changelogs} == {"xpbank-g1-learners-changelog"}
    assert all(s.config == {"cleanup.policy": "compact"} for s in changelogs)


def test_every_input_topic_is_an_input_role():
    topics = setups()
    assert {n for n, s in topics.items() if s.role == "input"} == set(INPUTS)


@pytest.mark.parametrize("days", ["0", "-2", "week"])
def test_output_retention_must_be_days_or_forever(days):
    with pytest.raises(ConfigError, match="XPBANK_OUTPUT_RETENTION_DAYS"):
        Settings.from_env({"XPBANK_OUTPUT_RETENTION_DAYS": days})


def held(setup: TopicSetup, partitions: int | None = None, **configs: str) -> Described:
    return Described(partitions or setup.partitions, setup.replication, setup.config | configs)


def test_plan_creates_missing_topics_and_aligns_configs_but_never_partitions():
    topics = setups()
    caliper, facts, banked = topics["learning.caliper.v1"], topics["xp.facts.v1"], topics["xp.banked.v1"]
    found = {
        caliper.name: held(caliper, **{"retention.ms": "604800000"}),
        facts.name: held(facts, partitions=2, **{"cleanup.policy": "delete,compact"}),
    }
    create, alter, drifts = plan([caliper, facts, banked], found)
    assert create == [banked]
    assert alter == {caliper.name: {"retention.ms": "-1"}, facts.name: {"cleanup.policy": "compact"}}
    assert set(drifts) == {
        Drift(banked.name, "exists", "yes", "no"),
        Drift(caliper.name, "retention.ms", "-1", "604800000"),
        Drift(facts.name, "partitions", "4", "2"),
        Drift(facts.name, "cleanup.policy", "compact", "delete,compact"),
    }


def test_plan_sees_no_drift_where_the_broker_matches_whatever_the_order_of_a_policy():
    topics = setups()
    found = {s.name: held(s) for s in topics.values()}
    facts = topics["xp.facts.v1"]
    found[facts.name] = held(facts, **{"cleanup.policy": "compact"})
    assert plan(topics.values(), found) == ([], {}, [])


def test_only_retention_of_inputs_and_the_rekey_topic_is_refused():
    topics = setups()
    drifts = [Drift("learning.caliper.v1", "retention.ms", "-1", "3600000"),
              Drift("xpbank-g1-rekeyed", "retention.bytes", "-1", "1000"),
              Drift("learning.curriculum.v1", "cleanup.policy", "compact", "compact,delete"),
              Drift("xp.banked.v1", "retention.ms", "-1", "3600000"),
              Drift("learning.submissions.v1", "partitions", "4", "8")]
    assert finite_retention(topics.values(), drifts) == drifts[:3]


def test_three_replicas_or_more_need_two_in_sync_for_every_topic_xpbank_creates():
    for replicas in ("3", "5"):
        topics = setups(XPBANK_REPLICATION_FACTOR=replicas)
        assert {s.config.get("min.insync.replicas") for s in topics.values()} == {"2"}
        assert {s.config["cleanup.policy"] for s in topics.values()} == {"delete", "compact"}  # and the rest kept
    for replicas in ("1", "2"):  # fewer: the broker's default, so one broker of two may go
        assert all("min.insync.replicas" not in s.config for s in setups(XPBANK_REPLICATION_FACTOR=replicas).values())
    topics = setups(XPBANK_REPLICATION_FACTOR="3")
    caliper = topics["learning.caliper.v1"]
    create, alter, drifts = plan([caliper], {caliper.name: held(caliper, **{"min.insync.replicas": "1"})})
    assert alter == {caliper.name: {"min.insync.replicas": "2"}}  # topics create aligns it, topics check reports it
    assert drifts == [Drift(caliper.name, "min.insync.replicas", "2", "1")]
