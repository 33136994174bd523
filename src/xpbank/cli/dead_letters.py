"""`xpbank dead-letters list|show|redrive`: read the dead letters back, filtered by
reason, original topic, time and learner, and send chosen originals back where they
came from once their cause is fixed (docs/operations.md, Re-drive dead letters).

A dead-letter topic is a `Source` (kafka/redrive.py): the worker's (`input_letters`,
back to the input topics) and the write-back sinks' (`sink_letters`, the fact's current
record back to `xp.facts.v1`, for the sink that refused it)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

import orjson

from xpbank.config import ConfigError, Settings
from xpbank.contract.topics import base_name
from xpbank.kafka.input_letters import INPUT_LETTERS
from xpbank.kafka.redrive import Filters, Letter, parse_since, read_letters, read_markers, redrive
from xpbank.kafka.sink_letters import SinkLetters, current_facts


async def sources(settings: Settings) -> tuple:
    return INPUT_LETTERS, SinkLetters(await current_facts(settings))


def filters_of(args: argparse.Namespace, prefix: str) -> Filters:
    return Filters(reasons=frozenset(args.reason or ()), topics=frozenset(base_name(t, prefix) for t in args.topic or ()),
                   since_ms=parse_since(args.since, datetime.now(UTC)) if args.since else None,
                   users=frozenset(args.user or ()))


async def letters(settings: Settings, args: argparse.Namespace, found_sources: tuple | None = None) -> list[Letter]:
    found_sources = found_sources or await sources(settings)
    found = [letter async for letter in read_letters(settings, found_sources, filters_of(args, settings.topic_prefix))]
    wanted = set(args.positions or ())
    return [letter for letter in found if not wanted or wanted & {
        letter.id, f"{letter.partition}/{letter.offset}", f"{base_name(letter.topic, settings.topic_prefix)}/{letter.partition}/{letter.offset}"}]


def when(ms: int | None) -> str:
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> tuple[list[Letter], dict]:
        return await letters(settings, args), await read_markers(settings)

    found, markers = asyncio.run(run())
    prefix = settings.topic_prefix
    for letter in found:
        done = markers.get(letter.origin)
        redriven = f"  re-driven to {base_name(done['topic'], prefix)}/{done['partition']}/{done['offset']}" if done else ""
        print(f"{base_name(letter.topic, prefix)}/{letter.partition}/{letter.offset}  {when(letter.timestamp_ms)}  "
              f"{letter.reason:<18} {base_name(letter.original, prefix)}  users={','.join(letter.users) or '-'}"
              f"{redriven}  {letter.detail[:80]}")
    print(f"{len(found)} dead letters", file=sys.stderr)
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    async def run() -> tuple[list[Letter], dict]:
        return await letters(settings, args), await read_markers(settings)

    found, markers = asyncio.run(run())
    for letter in found:
        doc = {"deadLetter": letter.id, **letter.document, "redriven": markers.get(letter.origin)}
        sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    return 0 if found or not args.positions else 1


def cmd_redrive(args: argparse.Namespace, settings: Settings) -> int:
    filters = filters_of(args, settings.topic_prefix)
    if filters.empty and not args.positions and not args.all:
        raise ConfigError("say which dead letters to re-drive: --reason, --topic, --since, --user, "
                          "positions, or --all")
    async def run():
        found_sources = await sources(settings)
        by_topic = {source.topic: source for source in found_sources}
        return await redrive(settings, await letters(settings, args, found_sources), by_topic, args.dry_run)

    planned = asyncio.run(run())
    verb = "would re-drive" if args.dry_run else "re-drove"
    prefix = settings.topic_prefix
    for letter, target in planned.send:
        print(f"{verb} {base_name(letter.topic, prefix)}/{letter.partition}/{letter.offset} ({letter.reason}) "
              f"-> {base_name(target, prefix)}")
    for letter, why in planned.refused:
        print(f"not re-driven {base_name(letter.topic, prefix)}/{letter.partition}/{letter.offset}: {why}", file=sys.stderr)
    print(f"{len(planned.send)} {'to re-drive (dry run)' if args.dry_run else 're-driven'}, "
          f"{len(planned.done_before)} re-driven before, {len(planned.refused)} refused", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    """`xpbank dead-letters ...` on the main parser's subcommands."""
    s = sub.add_parser("dead-letters", help="list, show and re-drive dead letters")
    commands = s.add_subparsers(dest="dead_letters_command", required=True)
    for name, run, help_ in (("list", cmd_list, "one line per dead letter (and whether it was re-driven)"),
                             ("show", cmd_show, "dead letters in full, as JSON"),
                             ("redrive", cmd_redrive, "send the originals back to their input topics (a sink's: the "
                                                      "fact's current record, to the sinks), each once")):
        c = commands.add_parser(name, help=help_)
        c.add_argument("positions", nargs="*", metavar="POSITION",
                       help="only these: PARTITION/OFFSET of the dead-letter topic (or TOPIC/PARTITION/OFFSET)")
        c.add_argument("--reason", action="append", metavar="R", help="reason code (repeatable)")
        c.add_argument("--topic", action="append", metavar="T", help="the original's topic, with or without the prefix (repeatable)")
        c.add_argument("--since", metavar="TIME", help="records stamped from TIME (ISO 8601) or for the last 90s, 30m, 6h, 7d")
        c.add_argument("--user", action="append", metavar="U", help="a learner the payload names (repeatable)")
        if name == "redrive":
            c.add_argument("--dry-run", action="store_true", help="print what would be re-driven, send nothing")
            c.add_argument("--all", action="store_true", help="every dead letter (without any filter)")
        c.set_defaults(run=run)
