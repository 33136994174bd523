"""`xpbank generations list|drop N`: the generations a replay leaves behind, and their
clean-up (docs/operations.md, Clean up a generation)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from xpbank.config import Settings
from xpbank.kafka.groups import group_names
from xpbank.kafka.admin import Admin
from xpbank.read.projector import projected_topics
from xpbank.runtime.generations import discover, drop, live


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    async def run():
        generations = await discover(settings)
        projectors = [name for name in await group_names(Admin(settings))
                      if name.startswith(f"{settings.topic_prefix}xpbank-projector")]
        lags = [(name, await Admin(settings).partition_lag(name, projected_topics(settings))) for name in projectors]
        return generations, lags

    generations, projectors = asyncio.run(run())
    running = live(generations)
    for g in generations:
        lag = "-" if g.lag is None else f"{g.lag:,}"
        print(f"generation {g.number} ({g.engine}){'  LIVE' if (g.engine, g.number) in running else ''}")
        print(f"  group       {g.group}{'' if g.group_exists else ' (gone)'}  members={g.members}  lag={lag}")
        print(f"  topics      {', '.join(g.topics) or '-'}")
        print(f"  stores here {', '.join(map(str, g.directories)) or '-'}")
    for name, rows in projectors:
        print(f"projector group {name}  lag={sum(r.lag for r in rows):,} (read side: not part of a generation)")
    if not generations:
        print(f"no generation found on {settings.broker} or under {settings.data_dir}", file=sys.stderr)
    return 0


def cmd_drop(args: argparse.Namespace, settings: Settings) -> int:
    try:
        groups, topics, directories = asyncio.run(drop(settings, args.generation))
    except ValueError as refused:
        print(f"xpbank: not dropped: {refused}", file=sys.stderr)
        return 1
    for name in groups:
        print(f"deleted group {name}")
    for name in topics:
        print(f"deleted topic {name}")
    for path in directories:
        print(f"deleted {path}")
    print(f"generation {args.generation}: {len(groups)} groups, {len(topics)} topics, {len(directories)} store "
          "directories deleted (run it on every machine that has stores)", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    """`xpbank generations ...` on the main parser's subcommands."""
    s = sub.add_parser("generations", help="list generations; drop an old one")
    commands = s.add_subparsers(dest="generations_command", required=True)
    c = commands.add_parser("list", help="each generation's group, topics, store directories here, lag; which is live")
    c.set_defaults(run=cmd_list)
    c = commands.add_parser("drop", help="delete a generation's groups, topics and store directories here (both engines)")
    c.add_argument("generation", type=int)
    c.set_defaults(run=cmd_drop)
