"""`xpbank copy-inputs --to-prefix P`: the input topics copied under another topic prefix,
the first step of growing the partitions (docs/scaling.md); run again, only what arrived
since."""

from __future__ import annotations

import argparse
import asyncio

from xpbank.config import ConfigError, Settings
from xpbank.kafka.copy import copy_inputs


def cmd_copy_inputs(args: argparse.Namespace, settings: Settings) -> int:
    if args.to_prefix == settings.topic_prefix:
        raise ConfigError("--to-prefix: the new prefix must differ from XPBANK_TOPIC_PREFIX")
    copied = asyncio.run(copy_inputs(settings, args.to_prefix))
    for topic in sorted(copied):
        print(f"{copied[topic]:>12,}  {settings.topic_prefix}{topic} -> {args.to_prefix}{topic}")
    print(f"copied {sum(copied.values()):,} records; run again to copy what arrives since")
    return 0


def add_parser(sub) -> None:
    s = sub.add_parser("copy-inputs", help="copy the input topics under another topic prefix (to grow the "
                                           "partitions: docs/scaling.md); again: only what arrived since")
    s.add_argument("--to-prefix", required=True, metavar="PREFIX", help="the new XPBANK_TOPIC_PREFIX (its topics exist)")
    s.set_defaults(run=cmd_copy_inputs)
