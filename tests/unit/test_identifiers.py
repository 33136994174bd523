"""SPEC §2.5: ids within XPBANK_MAX_ID_LENGTH and free of control characters, envelopes
within XPBANK_MAX_EVENTS_PER_ENVELOPE (a `schema_violation` naming the field and the
limit; only the event inside an envelope, the whole record for its sensor or size), and
ids combined so that different tuples never meet (fact and output ids, record keys,
store keys, Redis keys), unchanged for ids without the escaped characters."""

from __future__ import annotations

import uuid

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.test_codec import T0, dec, envelope, mastery, only, submission, tse
from xpbank.contract.codec import Accepted, Invalid
from xpbank.contract.heartbeats import decode_heartbeats
from xpbank.contract.identifiers import caliper_id_problem, escaped, redis_part, store_part
from xpbank.contract.topics import decision_key
from xpbank.core import ids
from xpbank.core.rules import Rules
from xpbank.processing.state import pair_key
from xpbank.read.projection import Keys
from xpbank.processing.learner_state import learner_prefix

LONG = "u" * 513
RULES = Rules()


def violation(result) -> str:
    assert isinstance(result, Invalid) and result.reason == "schema_violation", result
    return result.detail


# ---- limits ---------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "doc", "field"), [
    ("submissions", submission(userSourcedId=LONG), "AnswerSubmitted.userSourcedId"),
    ("submissions", submission(questionId="q\x001"), "AnswerSubmitted.questionId"),
    ("submissions", submission(exerciseSourcedId="ex\x7f"), "AnswerSubmitted.exerciseSourcedId"),
    ("mastery", mastery(courseSourcedId=LONG), "courseSourcedId"),
    ("curriculum", {"type": "CourseUpserted", "courseSourcedId": "c1", "units": [
        {"sourcedId": "u1", "sortOrder": 1, "lessons": [{"sourcedId": "l1", "sortOrder": 1, "resources": [
            {"sourcedId": LONG, "sortOrder": 1, "kind": "Video"}]}]}]}, "units.0.lessons.0.resources.0.sourcedId"),
    ("caliper", tse(actor={"id": "https://roster.example/users/" + LONG}), "actor.id"),
    ("caliper", tse(object={"activity": {"id": "v\n1"}}), "object.activity.id"),
    ("caliper", tse(object={"activity": {"id": "v1"}, "course": {"id": LONG}}), "object.course.id"),
])
def test_an_id_over_the_limit_or_with_a_control_character_is_a_schema_violation_naming_it(kind, doc, field):
    detail = violation(only(dec(kind, doc)))
    assert detail.startswith(f"{field}: ") and ("XPBANK_MAX_ID_LENGTH=512" in detail or "control character" in detail)


def test_the_limit_is_the_configured_one_and_an_id_at_it_passes():
    assert isinstance(only(dec("submissions", submission(userSourcedId="u" * 512))), Accepted)
    detail = violation(only(dec("submissions", submission(userSourcedId="u" * 65), rules=Rules(max_id_length=64))))
    assert "longer than XPBANK_MAX_ID_LENGTH=64 characters (65)" in detail


def test_inside_an_envelope_only_the_event_that_breaks_a_limit_is_dead_lettered():
    results = dec("caliper", envelope(tse(1), tse(2, actor={"id": LONG}), tse(3)))
    assert [type(r) for r in results] == [Accepted, Invalid, Accepted]
    assert results[1].detail.startswith("actor.id: longer than") and results[1].event_id == tse(2)["id"]


def test_other_caliper_types_are_held_to_the_limits_too():
    other = {"id": "urn:uuid:" + "x" * 600, "type": "NavigationEvent", "actor": {"id": "u1"}}
    result = only(dec("caliper", envelope(other)))
    assert violation(result).startswith("id: longer than") and result.event_id is None  # not repeated in the letter


def test_an_over_long_sensor_or_too_many_events_sink_the_whole_record():
    assert violation(only(dec("caliper", envelope(tse(1), sensor="s" * 513)))).startswith("envelope: sensor: longer")
    many = envelope(*[tse(n) for n in range(1, 1002)])
    assert violation(only(dec("caliper", many))) == (
        "envelope: data: 1001 events, over XPBANK_MAX_EVENTS_PER_ENVELOPE=1000; send them in several envelopes")
    assert len(dec("caliper", envelope(*[tse(n) for n in range(1, 1001)]))) == 1000


def test_a_tombstone_key_is_held_to_the_limit():
    assert violation(only(dec("curriculum", None, key=LONG.encode()))).startswith("courseSourcedId (the key): longer")


def test_the_hot_path_declines_what_breaks_a_limit_so_the_models_word_it():
    def beats(doc, **rules) -> list | None:
        return decode_heartbeats(orjson.dumps(doc), T0, RULES.max_payload_bytes, RULES.max_clock_skew_us, **rules)
    assert beats(envelope(tse(1))) is not None
    assert beats(envelope(tse(1), sensor="s" * 513)) is None
    assert beats(envelope(tse(1), sensor="s\x00")) is None
    assert beats(envelope(tse(1), tse(2)), max_events=1) is None
    assert beats(envelope(tse(1, actor={"id": LONG}))) is None
    assert beats(tse(1, object={"activity": {"id": "v\x1f"}})) is None
    assert beats(tse(1, object={"activity": {"id": "v1"}, "course": {"id": LONG}})) is None
    assert beats(tse(1, actor={"id": "u" * 70}), max_id_length=64) is None


def test_the_caliper_check_reads_any_mapping_and_skips_what_the_models_judge():
    assert caliper_id_problem({"actor": "https://x/u1", "object": {"activity": {"id": 5}}}) is None
    assert caliper_id_problem({"object": {"course": {"id": "c" * 513}}}).startswith("object.course.id: longer")


# ---- ids that cannot meet --------------------------------------------------------------

PLAIN = st.text(st.characters(blacklist_characters="%:{}\x1b\x1f", blacklist_categories=("Cs",)), max_size=12)
ANY = st.text(st.sampled_from("ab:%{}/ é\x1b\x1f3A7B"), max_size=8)


def combined(user: str, other: str) -> tuple:
    keys = Keys("p:")
    return (ids.exercise_fact_id(user, other, 1), ids.bank_award_id(user, other), ids.mastery_id(user, other, 1),
            ids.bank_output_id(user, other, 1, 1), ids.attempt_output_id("opened", user, other, 1, 1, "e"),
            ids.attempt_completed_id(user, other, 1, 1), ids.banking_decided_id(user, other, 1, "e"),
            decision_key(user, other), pair_key(user, other), keys.open_attempt(user, other),
            keys.active_attempt(user, other), keys.decision(user, other), keys.total(user), keys.exercises(user))


def test_the_issues_example_no_longer_meets():
    assert Keys().open_attempt("a:b", "c") != Keys().open_attempt("a", "b:c")
    assert ids.bank_award_id("a:b", "c") != ids.bank_award_id("a", "b:c")
    assert decision_key("a:b", "c") == "a%3Ab:c" and decision_key("a", "b:c") == "a:b%3Ac"


@given(ANY, ANY, ANY, ANY)
def test_different_id_tuples_never_give_one_combined_id(a, b, c, d):
    left, right = combined(a, b), combined(c, d)
    for n, (x, y) in enumerate(zip(left, right)):
        if n >= 12:  # keyed by the user alone
            assert (x == y) == (a == c), (n, a, c)
        else:
            assert (x == y) == ((a, b) == (c, d)), (n, a, b, c, d)


@given(PLAIN, PLAIN)
def test_ids_without_the_escaped_characters_keep_todays_form(user, other):
    assert ids.exercise_fact_id(user, other, 3) == f"exercise:{user}:{other}:3"
    assert ids.bank_award_id(user, other) == f"bank:{user}:{other}"
    assert ids.bank_output_id(user, other, 1, 2) == ids.output_id(f"xpbank:bank:{user}:{other}:1:2")
    assert ids.mastery_id(user, other, 2) == ids.output_id(f"xpbank:mastery:{user}:{other}:2")
    assert ids.attempt_completed_id(user, other, 1, 1) == ids.output_id(f"xpbank:attempt-completed:{user}:{other}:1:1")
    assert decision_key(user, other) == f"{user}:{other}" and pair_key(user, other) == f"{user}\x1f{other}"
    assert Keys("x:").open_attempt(user, other) == f"x:attempt-open:{user}:{other}"


def test_each_encoding_escapes_its_escape_character_first():
    assert escaped("%3A") == "%253A" and escaped(":") == "%3A"
    assert redis_part("{u}:%") == "%7Bu%7D%3A%25"
    assert store_part("a\x1fb") == "a\x1b\x1eb" and store_part("a\x1b\x1eb") == "a\x1b\x1b\x1eb"


def test_quix_learner_prefixes_are_length_prefixed_so_they_never_meet():
    users = ["", "a", "ab", "\x00\x00", str(uuid.uuid4())]
    prefixes = {learner_prefix(u) + b"w" for u in users} | {learner_prefix(u) + b"p:" for u in users}
    assert len(prefixes) == 2 * len(users)
