"""`xpbank sink oneroster|caliper`: the write-back sinks (SPEC §3.7, docs/write-back.md)."""

from __future__ import annotations

import argparse

from xpbank.config import Settings


def cmd_sink(args: argparse.Namespace, settings: Settings) -> int:
    from xpbank.entrypoints.sinks import main
    from xpbank.sinks.settings import CaliperSettings, OneRosterSettings

    sink_settings = OneRosterSettings.from_env() if args.sink == "oneroster" else CaliperSettings.from_env()
    main(sink_settings, until_caught_up=args.until_caught_up, loglevel=args.loglevel)
    return 0


def add_sink_parser(sub) -> None:
    s = sub.add_parser("sink", help="write facts back: OneRoster results or Caliper XP-earned events (docs/write-back.md)")
    s.add_argument("sink", choices=("oneroster", "caliper"))
    s.add_argument("--until-caught-up", action="store_true",
                   help="stop once every fact up to the end of xp.facts.v1 (as at start) is written or dead-lettered")
    s.add_argument("--loglevel", default="INFO")
    s.set_defaults(run=cmd_sink)
