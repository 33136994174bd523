"""`xpbank topics create|check`, `produce`, `dump` and `facts`: the topics and their
records, as an operator looks at them."""

from __future__ import annotations

import argparse
import asyncio
import sys

import orjson

from xpbank.cli.records import open_lines, read_lines
from xpbank.config import Settings
from xpbank.contract.times import format_time


def add_parser(sub) -> None:
    s = sub.add_parser("topics", help="topic administration")
    tsub = s.add_subparsers(dest="topics_command", required=True)
    t = tsub.add_parser("create", help="create every topic with its partitions and configs; align the configs of existing ones")
    t.set_defaults(run=cmd_topics_create)
    t = tsub.add_parser("check", help="print every difference between the broker's topics and the registry (exit 1 on any)")
    t.set_defaults(run=cmd_topics_check)
    s = sub.add_parser("produce", help="publish record lines to their topics")
    s.add_argument("file", help="record lines (JSONL), or - for stdin")
    s.add_argument("--topic", help="send every line to this topic instead of its own")
    s.set_defaults(run=cmd_produce)
    s = sub.add_parser("dump", help="print a topic's records from the beginning")
    s.add_argument("topic", help="registry name (XPBANK_TOPIC_PREFIX is prepended)")
    s.set_defaults(run=cmd_dump)
    s = sub.add_parser("facts", help="print the current facts (latest per factId)")
    s.set_defaults(run=cmd_facts)


def cmd_topics_create(args: argparse.Namespace, settings: Settings) -> int:
    from xpbank.runtime.topology import all_setups
    from xpbank.kafka.admin import converge

    created, altered, mismatched = asyncio.run(converge(settings, all_setups(settings)))
    for name in created:
        print(f"created {name}")
    for name, configs in sorted(altered.items()):
        print(f"altered {name}: " + ", ".join(f"{k}={v}" for k, v in sorted(configs.items())))
    for drift in mismatched:
        print(f"mismatch {drift} (xpbank never changes partitions or replicas)", file=sys.stderr)
    print(f"{len(created)} created, {len(altered)} altered; every topic present on {settings.broker}")
    return 1 if mismatched else 0


def cmd_topics_check(args: argparse.Namespace, settings: Settings) -> int:
    from xpbank.runtime.topology import all_setups
    from xpbank.kafka.admin import check

    drifts = asyncio.run(check(settings, all_setups(settings)))
    if drifts:
        print(f"{'topic':<44} {'key':<22} {'expected':<12} actual")
        for d in drifts:
            print(f"{d.topic:<44} {d.key:<22} {d.expected:<12} {d.actual}")
        print(f"{len(drifts)} differences (xpbank topics create fixes configs and missing topics)", file=sys.stderr)
        return 1
    print(f"every topic as the registry says on {settings.broker}")
    return 0


def cmd_produce(args: argparse.Namespace, settings: Settings) -> int:
    from xpbank.kafka.clients import produce

    records = read_lines(open_lines(args.file), settings.topic_prefix, topic=args.topic)
    count = asyncio.run(produce(settings, records, show_progress=True))
    print(f"produced {count} records", file=sys.stderr)
    return 0


def cmd_dump(args: argparse.Namespace, settings: Settings) -> int:
    from xpbank.kafka.clients import read_topic

    async def run() -> None:
        async for m in read_topic(settings, settings.topic_prefix + args.topic):
            value = None if m.value is None else _json_or_text(m.value)
            line = {
                "topic": m.topic, "key": m.key.decode("utf-8", "replace") if m.key is not None else None,
                "value": value, "timestamp": format_time(_ms(m.timestamp)), "partition": m.partition, "offset": m.offset,
            }
            sys.stdout.buffer.write(orjson.dumps(line) + b"\n")

    asyncio.run(run())
    return 0


def cmd_facts(args: argparse.Namespace, settings: Settings) -> int:
    from xpbank.kafka.clients import read_topic
    from xpbank.contract.topics import FACTS

    async def run() -> dict[str, dict]:
        facts: dict[str, dict] = {}
        async for m in read_topic(settings, settings.topic_prefix + FACTS):
            if m.value is None:
                continue
            fact = orjson.loads(m.value)
            held = facts.get(fact["factId"])
            if held is None or (fact["generation"], fact["revision"]) > (held["generation"], held["revision"]):
                facts[fact["factId"]] = fact
        return facts

    for fact in sorted(asyncio.run(run()).values(), key=lambda f: f["factId"]):
        sys.stdout.buffer.write(orjson.dumps(fact) + b"\n")
    return 0


def _json_or_text(value: bytes):
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value.decode("utf-8", "replace")


def _ms(ms: int):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC)
