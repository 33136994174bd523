"""Redis memory per learner (issue 22, docs/scaling.md): a simulated classroom's outputs
projected into a Redis of the benchmark's own (in batches of 2000, as the projector does:
upserts per second), every key's MEMORY USAGE summed; and what a Redis Cluster adds once
(a meta per hash slot)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections import Counter

import orjson
import redis.asyncio as aioredis

from bench.procs import free_port
from xpbank.cli.classroom import classroom
from xpbank.cli.records import read_lines
from xpbank.contract.outputs import AttemptOpened, AttemptProgressed, AttemptCompleted, AttemptDiscarded, BankingDecided, XpFact
from xpbank.core.rules import Rules
from xpbank.processing.simulate import Simulator
from xpbank.read.projection import Keys, plan_attempt, plan_decision, plan_fact
from xpbank.read.read_models import ReadModels

ATTEMPT_EVENTS = (AttemptOpened, AttemptProgressed, AttemptCompleted, AttemptDiscarded)


def plans(keys: Keys, learners: int) -> tuple[list, Counter]:
    """The classroom's upserts (each output in publication order) and what it held."""
    lines = [a.line for a in classroom(learners=learners, seed=3)]
    outputs = list(Simulator(Rules()).run(read_lines(orjson.dumps(line) for line in lines)))
    counts = Counter(records=len(lines), heartbeats=sum(1 for l in lines if l["topic"] == "learning.caliper.v1"))
    planned = []
    for offset, out in enumerate(outputs):
        if isinstance(out.value, XpFact):
            planned.append(plan_fact(keys, out.value))
            counts["facts"] += 1
        elif isinstance(out.value, ATTEMPT_EVENTS):
            planned.append(plan_attempt(keys, out.value, offset))
        elif isinstance(out.value, BankingDecided):
            planned.append(plan_decision(keys, out.value, offset))
    counts["outputs"] = len(outputs)
    return planned, counts


async def _measure(port: int, learners: int) -> dict:
    client = aioredis.Redis(port=port)
    models = ReadModels(client, "xpbank:")
    guard = await models.begin_rebuild("bench-epoch", "bench")
    planned, counts = plans(models.keys, learners)
    started = time.monotonic()
    for start in range(0, len(planned), 2000):  # as the projector applies a batch
        await models.apply(planned[start:start + 2000], "bench-epoch")
    upserts_per_s = len(planned) / (time.monotonic() - started)
    await models.advance({f"xp.facts.v1/{p}": 1000 for p in range(8)}, guard)
    assert await models.finish_rebuild("bench-epoch", guard)
    used = {}
    async for key in client.scan_iter(match="xpbank:*", count=1000):
        used[key] = await client.memory_usage(key, samples=0)
    fixed = sum(v for k, v in used.items() if k in (b"xpbank:meta", b"xpbank:positions"))
    per_learner = (sum(used.values()) - fixed) / learners
    # a cluster's slot metas, as a rebuild leaves them (epoch, state, the server's run id)
    metas = Keys("xpbank:", cluster=True).slot_metas()
    pipe = client.pipeline(transaction=False)
    for meta in metas:
        pipe.hset(meta, mapping={"epoch": "e" * 32, "state": "ready", "server": "r" * 40})
    await pipe.execute()
    slot_metas = 0
    for start in range(0, len(metas), 1000):
        pipe = client.pipeline(transaction=False)
        for meta in metas[start:start + 1000]:
            pipe.memory_usage(meta, samples=0)
        slot_metas += sum(await pipe.execute())
    await client.aclose()
    return {"learners": learners, "keys_per_learner": round((len(used) - 2) / learners, 1),
            "bytes_per_learner": round(per_learner), "records_per_learner": round(counts["records"] / learners, 1),
            "heartbeats_per_learner": round(counts["heartbeats"] / learners, 1),
            "facts_per_learner": round(counts["facts"] / learners, 1),
            "outputs_per_learner": round(counts["outputs"] / learners, 1), "cluster_slot_metas_bytes": slot_metas,
            "upserts_per_s": round(upserts_per_s)}


def redis_per_learner(learners: int, say) -> dict:
    """Starts a throw-away redis-server (Debian's, as deploy/redis/redis.sh installs it)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        server = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
                                   "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory],
                                  stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
                assert time.monotonic() < deadline and server.poll() is None, "redis-server did not start"
                time.sleep(0.1)
            out = asyncio.run(_measure(port, learners))
        finally:
            server.terminate()
            server.wait(10)
    say(f"read models: {out['bytes_per_learner']:,} bytes of Redis per learner ({out['keys_per_learner']} keys, "
        f"{out['records_per_learner']} input records); a cluster's slot metas {out['cluster_slot_metas_bytes']:,} bytes; "
        f"{out['upserts_per_s']:,} upserts/s applied")
    return out
