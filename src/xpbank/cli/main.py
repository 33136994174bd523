"""`xpbank` command line (SPEC §5). Each command parses its arguments and hands on."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import orjson

from xpbank.config import ENGINES, ConfigError, Settings
from xpbank.kafka.admin import FiniteRetention, KafkaUnavailable, TopicSetupError
from xpbank.cli import copy_inputs, dead_letters, generations, topics
from xpbank.cli.records import RecordLineError, open_lines, output_line, read_lines
from xpbank.cli.sinks import add_sink_parser


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from xpbank.processing.simulate import Simulator

    simulator = Simulator(settings.rules, settings.topic_prefix)
    out = sys.stdout.buffer
    for record in simulator.run(read_lines(open_lines(args.file), settings.topic_prefix)):
        out.write(output_line(record, settings.topic_prefix) + b"\n")
    out.flush()
    if args.summary:  # on its own lines even where stdout and stderr end up in one stream
        print("\nsummary:", file=sys.stderr)
        for name, count in sorted(simulator.counts.items()):
            print(f"  {name}: {count}", file=sys.stderr)
    return 0


def cmd_explain(args: argparse.Namespace, settings: Settings) -> int:
    from xpbank.core.explain import explain_banking, render
    from xpbank.processing.simulate import Simulator

    if not args.log:
        return _explain_from_worker(args, settings)
    simulator = Simulator(settings.rules, settings.topic_prefix)
    for _ in simulator.run(read_lines(open_lines(args.log), settings.topic_prefix)):
        pass
    store = simulator.store
    ref = store.mastery(args.user, args.exercise)
    course = store.course(ref.courseSourcedId) if ref else None
    pairs = store.pairs_of(args.user)
    explanation = explain_banking(args.user, args.exercise, ref, course, pairs)
    if args.json:
        print(orjson.dumps(explanation.model_dump(mode="json")).decode())
    else:
        print(render(explanation))
    return 0


def _explain_from_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Ask a running worker or `xpbank api` (any of them: the evidence is in Redis), with
    --token or the first of XPBANK_API_TOKENS."""
    import urllib.error
    import urllib.parse
    import urllib.request

    from xpbank.core.explain import Explanation, render

    base = args.url or f"http://127.0.0.1:{settings.web_port}"
    quote = lambda part: urllib.parse.quote(part, safe="")  # noqa: E731
    url = f"{base.rstrip('/')}/users/{quote(args.user)}/exercises/{quote(args.exercise)}/explain"
    token = args.token or next((secret.reveal() for secret, _, _ in settings.api_tokens.scopes), None)
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        print(f"xpbank: {url} answered {exc.code} {exc.reason}"
              + (" (give a token: --token or XPBANK_API_TOKENS)" if exc.code in (401, 403) else ""), file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"xpbank: no worker answered at {url} ({exc}); use --url, or --log FILE for an offline explanation",
              file=sys.stderr)
        return 1
    explanation = Explanation.model_validate_json(body)
    print(orjson.dumps(explanation.model_dump(mode="json")).decode() if args.json else render(explanation))
    return 0


def cmd_projector(args: argparse.Namespace, settings: Settings) -> int:
    from xpbank.entrypoints.projector import main_projector

    main_projector(settings)
    return 0


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    from xpbank.entrypoints.api import main_api
    from xpbank.read.server import Watch
    from xpbank.runtime.topology import app_id, input_topics

    main_api(settings, Watch(app_id(settings), tuple(input_topics(settings))))
    return 0


def cmd_projections_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from xpbank.read.projector import rebuild

    counts = asyncio.run(rebuild(settings))
    read = sum(v for k, v in counts.items() if k.startswith("projector_in:"))
    print(f"rebuilt the read models under {settings.redis_prefix!r} from {read} records "
          f"({counts.get('applied', 0)} upserts applied)")
    return 0


def with_engine(args: argparse.Namespace, settings: Settings) -> Settings:
    """--engine over XPBANK_ENGINE (checked again with the rest of the settings)."""
    if not getattr(args, "engine", None):
        return settings
    return Settings.from_env({**os.environ, "XPBANK_ENGINE": args.engine}) if args.engine != settings.engine else settings


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from xpbank.entrypoints.worker import run_worker

    settings = with_engine(args, settings)
    run_worker(settings, loglevel=args.loglevel)
    return 0


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    from xpbank.entrypoints.gateway import run
    from xpbank.gateway.settings import GatewaySettings

    run(GatewaySettings.from_env(), loglevel=args.loglevel, loop=args.loop)
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    import dataclasses

    from xpbank.entrypoints.worker import run_worker
    from xpbank.runtime.topology import app_id
    from xpbank.kafka.admin import truncations
    from xpbank.contract.topics import INPUTS

    settings = with_engine(args, settings)
    replayed = dataclasses.replace(settings, rules=dataclasses.replace(settings.rules, generation=args.generation))
    previous = app_id(dataclasses.replace(settings, rules=dataclasses.replace(settings.rules, generation=args.generation - 1)))
    gone = asyncio.run(truncations(settings, [settings.topic_prefix + t for t in INPUTS],
                                   previous if args.generation > 1 else None))
    for truncation in gone:
        print(f"xpbank: {truncation}", file=sys.stderr)
    if gone and not args.accept_truncated_history:
        print(f"xpbank: the input topics no longer hold their whole history ({sum(t.start for t in gone):,} records "
              "gone): a replay would rebuild state from part of it. Not replaying; --accept-truncated-history "
              "replays what is left.", file=sys.stderr)
        return 1
    run_worker(replayed, until_caught_up=not args.follow, loglevel=args.loglevel)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from xpbank.cli.demo import run_demo

    gateway = None
    if args.via_gateway is not None:
        from xpbank.cli.gateway_client import default_token, default_url

        token = args.token or default_token()
        if not token:
            raise ConfigError("--via-gateway needs a token: --token, or XPBANK_GATEWAY_TOKENS")
        gateway = (args.via_gateway or default_url(), token)
    asyncio.run(run_demo(settings, learners=args.learners, speed=args.speed, seed=args.seed, gateway=gateway,
                         trickle=args.trickle))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xpbank", description="Turns learning events into XP (see SPEC.md).")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("simulate", help="run the rules offline over a record log; prints output records")
    s.add_argument("file", help="record lines (JSONL), or - for stdin")
    s.add_argument("--summary", action="store_true", help="print counters to stderr")
    s.set_defaults(run=cmd_simulate)
    s = sub.add_parser("explain", help="why a mastery banked what it banked")
    s.add_argument("user")
    s.add_argument("exercise")
    s.add_argument("--log", help="decide offline from this record log (else ask a running worker)")
    s.add_argument("--url", help="a worker's API (default http://127.0.0.1:$XPBANK_WEB_PORT)")
    s.add_argument("--token", help="bearer token for the API (default: the first of XPBANK_API_TOKENS)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=cmd_explain)
    s = sub.add_parser("worker", help="run a stream-processing worker")
    s.add_argument("--engine", choices=ENGINES, help="faust (default) or quix; else XPBANK_ENGINE")
    s.add_argument("--loglevel", default="INFO")
    s.set_defaults(run=cmd_worker)
    s = sub.add_parser("gateway", help="HTTP endpoint (Caliper 1.2, submissions, masteries, courses) onto the input topics")
    s.add_argument("--loglevel", default="INFO", help="INFO logs every request (access log); WARNING does not")
    s.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop", help="event loop (for measurements)")
    s.set_defaults(run=cmd_gateway)
    s = sub.add_parser("replay", help="rebuild state from the input topics under a new generation")
    s.add_argument("--generation", type=int, required=True)
    s.add_argument("--follow", action="store_true", help="keep running as that generation's worker once caught up")
    s.add_argument("--engine", choices=ENGINES, help="faust (default) or quix; else XPBANK_ENGINE")
    s.add_argument("--accept-truncated-history", action="store_true",
                   help="replay although input partitions no longer start at offset 0")
    s.add_argument("--loglevel", default="INFO")
    s.set_defaults(run=cmd_replay)
    topics.add_parser(sub)
    s = sub.add_parser("demo", help="a simulated classroom producing live events")
    s.add_argument("--learners", type=int, default=50)
    s.add_argument("--speed", type=float, default=30.0, help="classroom seconds per real second")
    s.add_argument("--seed", type=int, default=7)
    s.add_argument("--via-gateway", nargs="?", const="", default=None, metavar="URL",
                   help="send over HTTP through `xpbank gateway` (default http://127.0.0.1:$XPBANK_GATEWAY_PORT)")
    s.add_argument("--token", help="the gateway's bearer token (default: the first of XPBANK_GATEWAY_TOKENS)")
    s.add_argument("--trickle", action="store_true", help="then one more learner at a time, until Ctrl-C")
    s.set_defaults(run=cmd_demo)
    s = sub.add_parser("projector", help="run the read-model projector on its own (facts and attempts into Redis)")
    s.set_defaults(run=cmd_projector)
    s = sub.add_parser("api", help="serve the HTTP API alone (read models in Redis), on XPBANK_WEB_PORT")
    s.set_defaults(run=cmd_api)
    s = sub.add_parser("projections", help="read-model administration")
    psub = s.add_subparsers(dest="projections_command", required=True)
    t = psub.add_parser("rebuild", help="delete the read models and rebuild them from the output topics")
    t.set_defaults(run=cmd_projections_rebuild)
    dead_letters.add_parser(sub)
    generations.add_parser(sub)
    add_sink_parser(sub)
    copy_inputs.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return args.run(args, settings)
    except (ConfigError, RecordLineError) as exc:
        print(f"xpbank: {exc}", file=sys.stderr)
        return 2
    except (TopicSetupError, KafkaUnavailable, FiniteRetention) as exc:
        print(f"xpbank: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
