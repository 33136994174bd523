"""What the read models' state says, from `meta` and each shard's meta (read_models.Status):
ready only when built, every shard holds the epoch, and every shard's server is the one
the read models were checked on; otherwise readers are told why."""

from __future__ import annotations

from xpbank.read.read_models import Guard, Shard, Status


def shard(n: int, epoch: str | None = "e1", server: str = "run-a", running: str = "run-a", state: str = "ready") -> Shard:
    return Shard(f"m{n}", f"p{n}", epoch, state, server, running)


def test_ready_when_built_and_every_shard_holds_the_epoch_on_the_server_it_was_checked_on():
    status = Status("e1", "ready", shards=(shard(1), shard(2, server="run-b", running="run-b")))
    assert (status.ready, status.name, status.lost, status.unchecked) == (True, "ready", [], [])
    assert status.running == {"run-a", "run-b"}


def test_a_shard_back_empty_or_with_other_read_models_is_lost():
    for lost in (shard(2, epoch=None), shard(2, epoch="e0")):
        status = Status("e1", "ready", shards=(shard(1), lost, shard(3)))
        assert (status.ready, status.name, status.lost) == (False, "lost", [lost])
        assert "(1 of 3 shards)" in status.problem() and "rebuilds" in status.problem()
    assert Status(None, None, shards=(shard(1, epoch=None),)).name == "lost"  # one Redis, emptied


def test_a_shard_answered_by_another_server_is_checked_before_it_serves():
    failed_over = shard(2, server="run-b", running="run-c")
    status = Status("e1", "ready", shards=(shard(1), failed_over))
    assert (status.ready, status.name, status.unchecked) == (False, "checking", [failed_over])
    assert "restarted or failed over" in status.problem()


def test_a_rebuild_under_way_says_so_and_why():
    status = Status("e2", "rebuilding", since=None, reason="a test", shards=(shard(1, epoch="e1"),))
    assert status.name == "rebuilding" and "(a test)" in status.problem()


def test_a_batch_is_guarded_by_the_servers_it_saw():
    guard = Guard("e1", (shard(1), shard(2, server="run-b", running="run-b"), shard(3, server="x", running="run-b")))
    assert guard.servers == "run-a run-b"
    assert guard != Guard("e1", (shard(1), shard(2, server="run-b", running="run-c")))  # a failover: resync
