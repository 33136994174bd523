"""`make bench` deletes the topics it created and no others (bench/broker.py)."""

from bench.broker import created_by


def test_a_run_owns_its_prefixed_topics_and_the_quix_peers_internal_ones():
    run = "bench7ccd0f59"
    assert created_by("bench7ccd0f59a.learning.caliper.v1", run)
    assert created_by("bench7ccd0f59lf.xpbank-g1-__assignor-__leader", run)
    # Quix Streams: <kind>__<consumer group>--<topic>--<store>, the group being the run's
    assert created_by("changelog__bench7ccd0f59a.peer-quix-a--bench7ccd0f59a.learning.caliper.v1--default", run)
    assert created_by("repartition__bench7ccd0f59c.peer-quix-c--bench7ccd0f59c.learning.caliper.v1--sum", run)


def test_another_runs_and_the_brokers_topics_are_left_alone():
    run = "bench7ccd0f59"
    assert not created_by("bench2f891ff1a.learning.caliper.v1", run)
    assert not created_by("changelog__bench2f891ff1a.peer-quix-a--bench2f891ff1a.learning.caliper.v1--default", run)
    assert not created_by("__consumer_offsets", run)
    assert not created_by("learning.caliper.v1", run)
