"""Which names belong to which generation, which generation is live, and when a drop
is refused (`xpbank generations`)."""

from __future__ import annotations

from pathlib import Path

from xpbank.runtime.generations import Generation, live, owner_of_topic, parse_group, refusal


def test_names_of_both_engines_belong_to_their_generation_and_nothing_else_does():
    assert parse_group("p.", "p.xpbank-g3") == ("faust", 3)
    assert parse_group("p.", "p.xpbank-quix-g12") == ("quix", 12)
    for other in ("p.xpbank-projector", "q.xpbank-g3", "xpbank-g3", "p.xpbank-g3-rekeyed", "p.xpbank-gx"):
        assert parse_group("p.", other) is None, other
    assert owner_of_topic("p.", "p.xpbank-g3-pairs-changelog") == ("faust", 3)
    assert owner_of_topic("p.", "p.xpbank-g3-__assignor-__leader") == ("faust", 3)  # Faust's own
    assert owner_of_topic("p.", "p.xpbank-quix-g3-learners-changelog") == ("quix", 3)
    assert owner_of_topic("p.", "p.xpbank-g30-rekeyed") == ("faust", 30)  # not generation 3's
    assert owner_of_topic("", "p.xpbank-g3-rekeyed") is None  # another deployment's prefix
    assert owner_of_topic("p.", "p.learning.caliper.v1") is None


def generation(number: int, engine: str = "faust", members: int = 0, committed: bool = True) -> Generation:
    return Generation(number, engine, f"xpbank-g{number}", True, (), (Path("data"),), members, committed, 0)


def test_live_is_the_generation_with_members_else_the_highest_committed():
    assert live([generation(1, members=2), generation(2)]) == {("faust", 1)}  # a replay done, workers not switched yet
    assert live([generation(1), generation(2), generation(3, committed=False)]) == {("faust", 2)}  # every worker stopped
    assert live([generation(2), generation(2, "quix")]) == {("faust", 2), ("quix", 2)}
    assert live([generation(1, committed=False)]) == set()


def test_a_drop_is_refused_for_a_running_live_or_configured_generation():
    found = [generation(1), generation(2, members=1), generation(3, "quix")]
    assert "running members" in refusal(2, found, configured=2)
    assert "XPBANK_GENERATION" in refusal(1, found, configured=1)
    assert refusal(1, found, configured=2) is None
    assert refusal(3, found, configured=2) is None  # a finished replay nobody switched to
    stopped = [generation(1), generation(2)]
    assert "live" in refusal(2, stopped, configured=5)
