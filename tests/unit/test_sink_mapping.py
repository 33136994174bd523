"""The write-back sinks' pure mapping (SPEC §3.7): a fact as an assessment result (names
from the operator's templates, metadata merged into the held result, older facts never
written over newer ones) and as XP-earned events (the value is the change since what the
server holds, so the sum of xpEarned is the learner's XP whatever the revisions,
redeliveries and replays)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xpbank.config import ConfigError
from xpbank.contract.outputs import XpFact
from xpbank.core.ids import output_id
from xpbank.sinks.analytics import (
    Identity, Sent, batches, change, envelope, event_id, timeback_subject, xp_earned, xp_earned_event,
)
from xpbank.sinks.gradebook import (
    Naming, already_written, latest_per_result, parse_kinds, result_body, result_url,
)

NICE = Naming.parse("{resource}_ali", "nice_{user}_{lineItem}", "nice_{user}_{lineItem}_attempt_{attempt}")
DEFAULT = Naming.parse("{resource}", "", "")
IDENTITY = Identity.parse("https://roster.example.org/ims/oneroster/rostering/v1p2/users/{user}",
                          "urn:xpbank:resources:{resource}")


def fact(kind: str = "banked", xp: int = 3, generation: int = 1, revision: int = 1, user: str = "u1",
         resource: str = "v1", attempt: int = 1, email: str | None = "u1@school.example", subject: str | None = "Math") -> XpFact:
    fact_id = f"bank:{user}:{resource}" if kind == "banked" else f"exercise:{user}:{resource}:{attempt}"
    return XpFact(factId=fact_id, kind=kind, generation=generation, revision=revision, userSourcedId=user, email=email,
                  date=date(2026, 11, 21), courseSourcedId="c1", subject=subject, resourceSourcedId=resource,
                  exerciseSourcedId="ex1", attempt=attempt, xp=xp,
                  eventTime=datetime(2026, 11, 21, 10, 0, 5, 250000, tzinfo=timezone.utc), sources=("urn:uuid:x",))


# ---- OneRoster: names -------------------------------------------------------------------


def test_the_replaced_systems_names_are_reproduced():
    assert NICE.line_item_id(fact()) == "v1_ali"
    assert NICE.result_id(fact()) == "nice_u1_v1_ali"
    assert NICE.result_id(fact("exercise", resource="ex1", attempt=2)) == "nice_u1_ex1_ali_attempt_2"


def test_the_default_result_id_is_uuid5_of_the_fact_id_across_revisions_and_generations():
    expected = str(uuid.uuid5(uuid.NAMESPACE_URL, "xpbank:result:bank:u1:v1"))
    assert {DEFAULT.result_id(fact(revision=r, generation=g)) for r in (1, 2) for g in (1, 2)} == {expected}
    assert DEFAULT.line_item_id(fact()) == "v1"
    assert DEFAULT.result_id(fact("exercise", resource="ex1", attempt=1)) != DEFAULT.result_id(
        fact("exercise", resource="ex1", attempt=2))


@pytest.mark.parametrize(("line_item", "banked", "exercise", "variable", "why"), [
    ("ali", "", "", "XPBANK_ONEROSTER_LINE_ITEM_ID", "resource"),
    ("{resource}", "nice_{lineItem}", "", "XPBANK_ONEROSTER_RESULT_ID", "user"),
    ("{resource}", "nice_{user}", "", "XPBANK_ONEROSTER_RESULT_ID", "resource"),
    ("{resource}", "", "nice_{user}_{lineItem}", "XPBANK_ONEROSTER_EXERCISE_RESULT_ID", "attempt"),
    ("{resource}", "", "nice_{user}_{attempt}", "XPBANK_ONEROSTER_EXERCISE_RESULT_ID", "resource"),
    ("{resource}", "nice_{user}_{resource}_{learner}", "", "XPBANK_ONEROSTER_RESULT_ID", "unknown placeholder"),
    ("{resource}", "nice_{user}_{resource}_{attempt}", "", "XPBANK_ONEROSTER_RESULT_ID", "unknown placeholder"),
    ("{resource!r}", "", "", "XPBANK_ONEROSTER_LINE_ITEM_ID", "unknown placeholder"),
    ("{resource", "", "", "XPBANK_ONEROSTER_LINE_ITEM_ID", "placeholders"),
])
def test_a_template_that_does_not_name_the_learner_and_what_sets_results_apart_is_refused(
        line_item, banked, exercise, variable, why):
    with pytest.raises(ConfigError, match=variable) as refused:
        Naming.parse(line_item, banked, exercise)
    assert why in str(refused.value)


def test_kinds_and_urls():
    assert parse_kinds("banked") == {"banked"} and parse_kinds(" banked , exercise ") == {"banked", "exercise"}
    with pytest.raises(ConfigError, match="XPBANK_ONEROSTER_KINDS"):
        parse_kinds("attempts")
    assert result_url("https://or.example/", "nice_u 1/x") == \
        "https://or.example/ims/oneroster/gradebook/v1p2/assessmentResults/nice_u%201%2Fx"


# ---- OneRoster: the body ----------------------------------------------------------------


def test_a_result_body_is_a_oneroster_assessment_result_of_the_fact():
    body = result_body(fact(xp=4, generation=2, revision=3), NICE, None)
    assert body == {"assessmentResult": {
        "sourcedId": "nice_u1_v1_ali", "status": "active", "assessmentLineItem": {"sourcedId": "v1_ali"},
        "student": {"sourcedId": "u1"}, "scoreDate": "2026-11-21T10:00:05.250Z", "scoreStatus": "fully graded",
        "metadata": {"xp": 4, "xpReason": "Banked XP", "factId": "bank:u1:v1", "generation": 2, "revision": 3,
                     "courseSourcedId": "c1", "exerciseSourcedId": "ex1"}}}
    exercise = result_body(fact("exercise", resource="ex1", attempt=2), NICE, None)["assessmentResult"]
    assert exercise["metadata"]["xpReason"] == "Exercise XP" and exercise["metadata"]["attempt"] == 2


def test_what_xpbank_does_not_own_survives_a_write():
    held = {"sourcedId": "nice_u1_v1_ali", "status": "active", "dateLastModified": "2026-11-20T00:00:00.000Z",
            "assessmentLineItem": {"sourcedId": "v1_ali"}, "student": {"sourcedId": "u1"}, "score": 100,
            "comment": "Banked XP awarded upon exercise completion.", "scoreDate": "2026-11-20T00:00:00.000Z",
            "scoreStatus": "fully graded",
            "metadata": {"xp": 1, "xpReason": "Banked XP", "nice_timeSpent": 95, "completedAt": "2026-11-20T00:00:00Z"}}
    written = result_body(fact(xp=2), NICE, held)["assessmentResult"]
    assert written["metadata"]["nice_timeSpent"] == 95 and written["metadata"]["completedAt"] == "2026-11-20T00:00:00Z"
    assert written["metadata"]["xp"] == 2 and written["score"] == 100 and written["comment"].startswith("Banked")
    assert "dateLastModified" not in written  # the server's own
    assert result_body(fact(), NICE, {"metadata": None})["assessmentResult"]["metadata"]["xp"] == 3


def test_a_held_result_from_this_or_a_newer_revision_is_left_alone():
    written = result_body(fact(generation=1, revision=2), DEFAULT, None)["assessmentResult"]
    assert already_written(written, fact(generation=1, revision=2))
    assert already_written(written, fact(generation=1, revision=1))  # an older revision never goes back
    assert not already_written(written, fact(generation=1, revision=3))
    assert not already_written(written, fact(generation=2, revision=1))  # a replay rewrites it
    assert not already_written({"metadata": {"xp": 5, "xpReason": "Banked XP"}}, fact())  # the replaced system's
    assert not already_written({"metadata": {"factId": "bank:u1:v1", "generation": "1", "revision": 9}}, fact())
    assert not already_written(None, fact())


def test_a_batch_writes_each_result_once_with_the_greatest_generation_and_revision():
    facts = [fact(revision=1), fact(revision=3, generation=1), fact(revision=2), fact(revision=1, generation=2)]
    latest = latest_per_result([(DEFAULT.result_id(f), f) for f in facts])
    assert [(f.generation, f.revision) for f in latest.values()] == [(2, 1)]


# ---- Caliper: the change to send ------------------------------------------------------------


def test_the_value_is_the_change_since_what_was_sent():
    assert change(None, fact(xp=3)) == 3
    assert change(Sent(1, 1, 3), fact(xp=5, revision=2)) == 2
    assert change(Sent(1, 2, 5), fact(xp=5, revision=2)) is None  # redelivered
    assert change(Sent(1, 2, 5), fact(xp=3, revision=1)) is None  # older
    assert change(Sent(1, 2, 5), fact(xp=5, generation=2, revision=1)) == 0  # a replay: nothing changed
    assert change(Sent(2, 1, 5), fact(xp=9, generation=1, revision=3)) is None  # the old generation, late


revisions = st.lists(st.tuples(st.integers(1, 3), st.integers(0, 40)), min_size=1, max_size=12)


@given(revisions, st.data())
def test_the_sum_of_what_is_sent_is_the_current_facts_xp_in_any_delivery_order(published, data):
    """Facts of one factId in publication order (generation, then revision within it);
    the sink sees them with redeliveries of anything already seen; what it sends adds up
    to the xp of the greatest (generation, revision) it saw."""
    facts, counters = [], {}
    for generation, xp in sorted(published, key=lambda p: p[0]):
        counters[generation] = counters.get(generation, 0) + 1
        facts.append(fact(xp=xp, generation=generation, revision=counters[generation]))
    seen, sent, total = [], None, 0
    for f in facts:
        arrivals = [f, *data.draw(st.lists(st.sampled_from(seen), max_size=2))] if seen else [f]
        seen.append(f)
        for arrival in arrivals:
            value = change(sent, arrival)
            if value is not None:
                total += value
                sent = Sent(arrival.generation, arrival.revision, arrival.xp)
    current = max(facts, key=lambda f: (f.generation, f.revision))
    assert total == current.xp


# ---- Caliper: the event ---------------------------------------------------------------------


def test_an_xp_earned_event_has_the_timeback_shape_and_a_deterministic_id():
    event = xp_earned_event(fact(xp=5, revision=2), 2, IDENTITY)
    assert event == {
        "@context": "http://purl.imsglobal.org/ctx/caliper/v1p2",
        "id": output_id("xpbank:xp-earned:bank:u1:v1:1:2"),
        "type": "ActivityEvent", "profile": "TimebackProfile", "action": "Completed",
        "eventTime": "2026-11-21T10:00:05.250Z",
        "actor": {"id": "https://roster.example.org/ims/oneroster/rostering/v1p2/users/u1", "type": "TimebackUser",
                  "email": "u1@school.example"},
        "object": {"id": "urn:xpbank:resources:v1", "type": "TimebackActivityContext", "subject": "Math",
                   "app": {"name": "xpbank"}, "activity": {"id": "urn:xpbank:resources:v1", "name": "v1"},
                   "course": {"name": "c1"}},
        "generated": {"id": output_id("xpbank:xp-earned-metrics:bank:u1:v1:1:2"),
                      "type": "TimebackActivityMetricsCollection", "items": [{"type": "xpEarned", "value": 2}]},
        "extensions": {"xpbankFactId": "bank:u1:v1", "kind": "banked", "generation": 1, "revision": 2, "xp": 5},
    }
    assert event_id(fact(revision=2)) == event["id"] and xp_earned(event) == 2
    assert xp_earned_event(fact(), 1, IDENTITY) == xp_earned_event(fact(), 1, IDENTITY)


def test_the_actor_names_the_learner_percent_encoded_and_no_email_is_left_out():
    event = xp_earned_event(fact(user="a/b:c%", resource="r 1", email=None), 1, IDENTITY)
    assert event["actor"] == {"id": "https://roster.example.org/ims/oneroster/rostering/v1p2/users/a%2Fb%3Ac%25",
                              "type": "TimebackUser"}
    assert event["object"]["activity"] == {"id": "urn:xpbank:resources:r%201", "name": "r 1"}


@pytest.mark.parametrize(("subject", "mapped"), [
    ("Math", "Math"), ("math", "Math"), (" Reading ", "Reading"), ("Social Studies", "Social Studies"),
    ("social-studies", "Social Studies"), ("ELA", "Reading"), ("Science", "Science"), ("Language", "Language"),
    ("Art", "None"), ("", "None"), (None, "None"),
])
def test_the_subject_is_mapped_onto_timebacks_enum(subject, mapped):
    assert timeback_subject(subject) == mapped


def test_exercise_and_banked_facts_are_separate_events():
    banked, exercise = fact("banked", xp=5), fact("exercise", resource="ex1", xp=3)
    events = [xp_earned_event(f, f.xp, IDENTITY) for f in (banked, exercise)]
    assert [xp_earned(e) for e in events] == [5, 3] and events[0]["id"] != events[1]["id"]
    assert [e["extensions"]["kind"] for e in events] == ["banked", "exercise"]


@pytest.mark.parametrize(("actor", "activity"), [
    ("https://roster.example.org/users/", "urn:x:{resource}"),
    ("https://roster.example.org/users/{user}/profile", "urn:x:{resource}"),
    ("roster/users/{user}", "urn:x:{resource}"),
    ("https://roster.example.org/users/{user}", "urn:x:fixed"),
    ("https://roster.example.org/users/{user}", "{resource}"),
])
def test_event_templates_must_name_the_learner_last_and_the_resource(actor, activity):
    with pytest.raises(ConfigError, match="XPBANK_CALIPER_"):
        Identity.parse(actor, activity)


def test_envelopes_and_batches():
    doc = envelope([{"id": "e"}], "urn:xpbank:sinks:caliper", "2026-11-21T10:00:00.000Z")
    assert doc == {"sensor": "urn:xpbank:sinks:caliper", "sendTime": "2026-11-21T10:00:00.000Z",
                   "dataVersion": "http://purl.imsglobal.org/ctx/caliper/v1p2", "data": [{"id": "e"}]}
    assert batches(list(range(5)), 2) == [[0, 1], [2, 3], [4]] and batches([], 3) == []
