"""`xpbank demo`: a simulated classroom producing live events, with the worker's awards,
facts and dead letters printed as they happen."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from xpbank.kafka.connection import aiokafka_options
from xpbank.cli.classroom import classroom
from xpbank.config import Settings
from xpbank.kafka.clients import partitions_of
from xpbank.kafka.admin import group_lag
from xpbank.runtime.topology import app_id, create_topics, input_topics
from xpbank.cli.records import parse_line
from xpbank.contract.topics import BANKED, CURRICULUM, DEAD_LETTERS, FACTS

BOLD, DIM, GREEN, YELLOW, RED, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[33m", "\033[31m", "\033[0m"


def _paint(text: str, color: str, enabled: bool) -> str:
    return f"{color}{text}{RESET}" if enabled else text


async def run_demo(settings: Settings, learners: int = 50, speed: float = 30.0, seed: int = 7,
                   gateway: tuple[str, str] | None = None, trickle: bool = False) -> None:
    """`gateway`: (url, token) to send through `xpbank gateway` instead of to Kafka;
    `trickle`: afterwards, one more learner at a time until interrupted."""
    await create_topics(settings)
    color = sys.stdout.isatty()
    start = datetime.now(UTC)
    arrivals = list(classroom(learners=learners, seed=seed, start=start, pace=1 / speed))
    via = f", sent through the gateway at {gateway[0]}" if gateway else ""
    print(_paint(f"xpbank demo: {learners} learners, {len(arrivals)} records over ~{arrivals[-1].offset:.0f}s "
                 f"(classroom time x{speed:g}){via}", BOLD, color), flush=True)
    watcher = asyncio.create_task(watch(settings, color))
    if gateway:
        await post_live(*gateway, arrivals, color)
    else:
        await produce_live(settings, arrivals)
    if not await caught_up(settings, timeout=60):
        print(_paint(f"no worker of group {app_id(settings)} caught up within 60 s: is one running?", RED, color))
    await asyncio.sleep(1.5)  # the last outputs reach the watcher
    watcher.cancel()
    totals = await asyncio.gather(watcher, return_exceptions=True)
    summary = totals[0] if isinstance(totals[0], Counter) else Counter()
    print(_paint("\nleaderboard (current facts)", BOLD, color))
    for user, xp in summary.most_common(5):
        print(f"  {user:<14} {xp:>4} XP")
    print("see every fact: .venv/bin/xpbank facts | head")
    if trickle:
        await trickle_learners(settings, learners, speed, seed, gateway, color)


async def trickle_learners(settings: Settings, first: int, speed: float, seed: int, gateway: tuple[str, str] | None,
                           color: bool) -> None:
    """One new learner after another through the same course, until cancelled (Ctrl-C):
    the page and the API keep moving after the demo."""
    print(_paint("\na learner now and then keeps the page moving; Ctrl-C stops", BOLD, color), flush=True)
    watcher = asyncio.create_task(watch(settings, color))
    try:
        for number in itertools.count(first):
            arrivals = [a for a in classroom(learners=1, seed=seed + number, start=datetime.now(UTC), pace=1 / speed,
                                             first_learner=number) if a.line["topic"] != CURRICULUM]
            print(_paint(f"trickle: learner-{number:03d} starts the course", DIM, color), flush=True)
            await (post_live(*gateway, arrivals, color) if gateway else produce_live(settings, arrivals))
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def caught_up(settings: Settings, timeout: float) -> bool:
    """Until the worker group has processed every input (its own masteries too), twice in a row."""
    calm, deadline = 0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        lag = await group_lag(settings, app_id(settings), input_topics(settings))
        calm = calm + 1 if not sum(lag.values()) else 0
        if calm >= 2:
            return True
        await asyncio.sleep(0.5)
    return False


async def produce_live(settings: Settings, arrivals) -> None:
    producer = AIOKafkaProducer(**aiokafka_options(settings), enable_idempotence=True, linger_ms=5)
    await producer.start()
    began = time.monotonic()
    try:
        for number, arrival in enumerate(arrivals, start=1):
            delay = arrival.offset - (time.monotonic() - began)
            if delay > 0:
                await asyncio.sleep(delay)
            record = parse_line(orjson.dumps(arrival.line), number, settings.topic_prefix)
            await producer.send(settings.topic_prefix + record.topic, value=record.value, key=record.key,
                                timestamp_ms=int(record.timestamp.timestamp() * 1000))
        await producer.flush()
    finally:
        await producer.stop()


async def post_live(url: str, token: str, arrivals, color: bool) -> None:
    """The same arrivals as HTTP requests to the gateway; refusals are printed."""
    from xpbank.cli.gateway_client import GatewayClient

    began = time.monotonic()
    async with GatewayClient(url, token) as client:
        for arrival in arrivals:
            delay = arrival.offset - (time.monotonic() - began)
            if delay > 0:
                await asyncio.sleep(delay)
            status, detail = await client.send(arrival.line)
            if status != 200:
                print(_paint(f"  gateway refused: {status}", RED, color) + _paint(f"  {detail[:70]}", DIM, color), flush=True)


async def watch(settings: Settings, color: bool) -> Counter:
    """Print outputs from now on; return XP per learner from the facts seen."""
    names = [settings.topic_prefix + t for t in (BANKED, FACTS, DEAD_LETTERS)]
    consumer = AIOKafkaConsumer(**aiokafka_options(settings), group_id=None, enable_auto_commit=False)
    await consumer.start()
    facts: dict[str, dict] = {}
    try:
        tps = [TopicPartition(n, p) for n in names for p in await partitions_of(settings, n)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        while True:
            for tp, messages in (await consumer.getmany(timeout_ms=500)).items():
                for m in messages:
                    value = orjson.loads(m.value)
                    if tp.topic.endswith(BANKED):
                        print(_paint(f"  +{value['deltaXp']} XP banked  ", GREEN, color)
                              + f"{value['userSourcedId']}  {value['resourceKind'].lower()} {value['resourceSourcedId']}: "
                              f"{value['activeSeconds']:.0f}s before mastering {value['exerciseSourcedId']}"
                              + (_paint(f"  (revision {value['revision']}: late heartbeat)", YELLOW, color) if value["revision"] > 1 else ""),
                              flush=True)
                    elif tp.topic.endswith(FACTS):
                        facts[value["factId"]] = value
                        if value["kind"] == "exercise":
                            print(_paint(f"  +{value['xp']} XP exercise", GREEN if value["xp"] else DIM, color)
                                  + f" {value['userSourcedId']}  {value['exerciseSourcedId']} attempt {value['attempt']}", flush=True)
                    else:
                        print(_paint(f"  dead letter: {value['reason']}", RED, color) + _paint(f"  {value['detail'][:70]}", DIM, color), flush=True)
    except asyncio.CancelledError:
        pass
    finally:
        await consumer.stop()
    totals: Counter = Counter()
    for fact in facts.values():
        totals[fact["userSourcedId"]] += fact["xp"]
    return totals
