"""The benchmark summary: the keys of issue 14 (and the gateway's), a table with targets,
latest.json and a dated markdown copy."""

from __future__ import annotations

import os
import platform
import re
import sys
from datetime import date
from pathlib import Path

import orjson

from bench.cluster import replication_rows, replication_summary
from bench.gateway import gateway_rows, summary as gateway_summary
from bench.profiles import describe
from bench.sinks import sink_rows, summary as sinks_summary

ROOT = Path(__file__).resolve().parents[1]
PAIRS_100K = 100_000


def machine() -> dict:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
    pom = (ROOT / "deploy/kafka/pom.xml").read_text()
    kafka = re.search(r"<kafka.version>(.+?)</kafka.version>", pom)
    return {"cpus": os.cpu_count(), "cpu_model": model.group(1).strip() if model else platform.processor(),
            "ram_gb": round(int(mem.group(1)) / 1024 / 1024, 1) if mem else None,
            "python": platform.python_version(), "interpreter": interpreter(),
            "kafka": kafka.group(1) if kafka else None, "os": f"{platform.system()} {platform.release()}"}


def interpreter() -> str:
    """The CPython build running the benchmark: builds of one version differ in speed by
    how they were compiled (docs/benchmarks.md, "The interpreter: the build the image ships")."""
    linked = "a shared libpython" if "libpython" in Path("/proc/self/maps").read_text() else "libpython built in"
    return f"{os.path.realpath(sys.executable)}, {linked}"


def _recovery(state: dict, startup_s: float, pairs: int) -> float:
    """Restart without local state to "Worker ready"; at BENCH_SCALE<1 the part above a
    fresh start is scaled to 100k pairs."""
    return round(startup_s + max(state["recovery_s"] - startup_s, 0) * PAIRS_100K / pairs, 2)


def _ms(cuts: dict) -> dict:
    return {k: None if v is None else round(v, 1) for k, v in cuts.items()}


def _engine(f: dict, engine: str) -> dict:
    single, envelope = f["single"][engine], f["envelope"][engine]
    state, lat = f["engines"][engine]["state"], f["engines"][engine]["latency"]
    pairs = state["pairs"]
    return {
        "single_records_per_s": round(single["records_per_s"]),
        "envelope_events_per_s": round(envelope["events_per_s"]),
        "latency_ms": _ms(lat["banked"]),  # the run with the highest p99
        "latency_runs_ms": [_ms(run["banked"]) for run in lat.get("runs", [lat])],
        "recovery_s_100k_pairs": _recovery(state, envelope["startup_s"], pairs),
        "replay_events_per_s": round(state["replay_events_per_s"]),
        "bytes_per_pair": round(state["store_bytes"] / pairs, 1),
        "rss_mb_per_100k_pairs": round((envelope["rss_end_mb"] - envelope["rss_start_mb"]) * PAIRS_100K / pairs, 1),
        "profiles": {"single": single.get("profile"), "envelope": envelope.get("profile"),
                     "recovery": state.get("recovery_profile")},
    }


def results(f: dict, host: dict) -> dict:
    single, envelope = f["single"], f["envelope"]
    peers = single["peers"]
    out: dict = {
        "core_single_events_per_s": f["core"]["core_single_events_per_s"],
        "core_envelope_events_per_s": f["core"]["core_envelope_events_per_s"],
        "peers": {"raw_records_per_s": round(single["raw"]["records_per_s"]),
                  "raw_envelope_events_per_s": round(envelope["raw"]["events_per_s"])}
                 | {f"{name}_records_per_s": round(p["records_per_s"]) for name, p in peers.items()}
                 | ({"quix_envelope_events_per_s": round(envelope["peers"]["quix"]["records_per_s"] * 20)}
                    if "quix" in envelope["peers"] else {}),
        "engines": {engine: _engine(f, engine) for engine in f["engines"]},
        "machine": host,
    }
    if "rounds" in single:  # the single shape measured in rounds (bench/__main__.py best_of)
        out["single_rounds"] = single["rounds"]
    if "envelope_long" in f:  # the long run (bench/__main__.py long_envelopes)
        long = f["envelope_long"]
        out["peers"]["quix_envelope_long_events_per_s"] = round(long["peers"]["quix"]["records_per_s"] * 20)
        out["engines"]["quix"]["envelope_long"] = {"events": long["events"],
                                                   "events_per_s": round(long["quix"]["events_per_s"]),
                                                   "profile": long["quix"].get("profile")}
    if "quix_exactly_once" in single:
        out["engines"]["quix"]["exactly_once"] = {
            "single_records_per_s": round(single["quix_exactly_once"]["records_per_s"]),
            "envelope_events_per_s": round(envelope["quix_exactly_once"]["events_per_s"])}
    if "replication" in f:
        out["replication"] = replication_summary(f["replication"])
    if "read_models" in f:
        out["read_models"] = {k: f["read_models"][k] for k in ("bytes_per_learner", "keys_per_learner",
                                                               "records_per_learner", "cluster_slot_metas_bytes",
                                                               "upserts_per_s")}
    return (out | (gateway_summary(f["gateway"]) if "gateway" in f else {})
            | (sinks_summary(f["sinks"]) if "sinks" in f else {}))


LATENCY_BOUND = {"samples": 0, "note": "a latency waits (two broker round trips, the checkpoint or commit "
                                      "interval, the producer's linger) rather than computes: see docs/benchmarks.md"}


def rows(s: dict, f: dict) -> list[tuple[str, str, str, str, dict | None]]:
    """(figure, value, target, PASS/MISS/-, the profile that says what bounds it)."""
    def check(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    peers, engines = s["peers"], s["engines"]
    core = f["core"]["details"]
    out = [
        ("core in-process (handle_record, no Kafka): single heartbeats", f"{s['core_single_events_per_s']:,} events/s",
         ">= 150,000", check(s["core_single_events_per_s"] >= 150_000), core.get("single_profile")),
        ("core in-process: 20-event envelopes", f"{s['core_envelope_events_per_s']:,} events/s", ">= 300,000",
         check(s["core_envelope_events_per_s"] >= 300_000), core.get("envelope_profile")),
        ("peer: raw ceiling (aiokafka + orjson), singles / envelopes",
         f"{peers['raw_records_per_s']:,} records/s / {peers['raw_envelope_events_per_s']:,} events/s", "", "", None),
    ]
    names = {"quix": "Quix Streams read-time sum", "faust_floor": "Faust floor (agent only iterates)",
             "faust_table": "naive Faust table (a write per record)"}
    out += [(f"peer: {names[n]}, singles", f"{peers[f'{n}_records_per_s']:,} records/s", "", "", None)
            for n in names if f"{n}_records_per_s" in peers]
    if "quix_envelope_events_per_s" in peers:
        out.append(("peer: Quix Streams read-time sum, envelopes", f"{peers['quix_envelope_events_per_s']:,} events/s",
                    "", "", None))
    for engine, e in engines.items():
        out += _engine_rows(engine, e, peers, check)
    out += [(*row, None) for row in _round_rows(s.get("single_rounds", []))]
    out += [(*row, None) for row in gateway_rows(s)] if "gateway_single_requests_per_s" in s else []
    out += [(*row, None) for row in sink_rows(s)] if "sink_oneroster_results_per_s" in s else []
    if "read_models" in s:
        r = s["read_models"]
        out.append(("read models: Redis per classroom learner (keys; a cluster's slot metas, once)",
                    f"{r['bytes_per_learner']:,} B ({r['keys_per_learner']} keys; "
                    f"{r['cluster_slot_metas_bytes'] / 2**20:.1f} MiB)", "", "", None))
        out.append(("read models: upserts applied per second (one Redis, batches of 2,000)",
                    f"{r['upserts_per_s']:,} upserts/s", "", "", None))
    return out + ([(*row, None) for row in replication_rows(s)] if "replication" in s else [])


def _round_rows(rounds: list[dict]) -> list[tuple[str, str, str, str]]:
    """Each round of the single shape with its ratios read within the round (the rows
    above take each program's fastest round)."""
    out = []
    for number, r in enumerate(rounds, 1):
        peers, engines = r["peers"], r["engines"]
        ratios = [f"{engine} {rate / peers[peer]:.0%} of the {name}"
                  for engine, peer, name in (("faust", "faust_floor", "floor"), ("quix", "quix", "peer"))
                  if (rate := engines.get(engine)) and peers.get(peer)]
        rates = [*(f"peer {name} {rate:,}" for name, rate in peers.items()),
                 *(f"{name} {rate:,}" for name, rate in engines.items())]
        out.append((f"singles, round {number} of {len(rounds)} (records/s)", "; ".join([", ".join(rates), *ratios]),
                    "", ""))
    return out


def _engine_rows(engine: str, e: dict, peers: dict, check) -> list[tuple[str, str, str, str, dict | None]]:
    """An engine's rows with issue 25's targets; each ratio is read within this run."""
    single, envelope, profiles = e["single_records_per_s"], e["envelope_events_per_s"], e.get("profiles", {})
    out = []
    if engine == "quix" and "quix_records_per_s" in peers:
        out.append(("quix: singles", f"{single:,} records/s ({single / peers['quix_records_per_s']:.0%} of the peer)",
                    ">= 60% of the Quix peer", check(single >= 0.6 * peers["quix_records_per_s"]), profiles.get("single")))
    elif engine == "faust" and "faust_floor_records_per_s" in peers:
        floor, table = peers["faust_floor_records_per_s"], peers.get("faust_table_records_per_s", 0)
        out.append(("faust: singles", f"{single:,} records/s ({single / floor:.0%} of the floor)",
                    ">= 60% of the floor, > naive table", check(single >= 0.6 * floor and single > table),
                    profiles.get("single")))
    else:
        out.append((f"{engine}: singles", f"{single:,} records/s", "", "", None))
    out.append((f"{engine}: envelopes x20", f"{envelope:,} events/s", ">= 100,000" if engine == "quix" else "",
                check(envelope >= 100_000) if engine == "quix" else "", profiles.get("envelope")))
    if "envelope_long" in e and "quix_envelope_long_events_per_s" in peers:
        long, peer = e["envelope_long"], peers["quix_envelope_long_events_per_s"]
        out.append((f"{engine}: envelopes x20, a run 5 times as long ({long['events']:,} events)",
                    f"{long['events_per_s']:,} events/s (the peer: {peer:,})", ">= 100,000",
                    check(long["events_per_s"] >= 100_000), long.get("profile")))
    if "exactly_once" in e:
        eos = e["exactly_once"]
        out.append((f"{engine} exactly-once: singles / envelopes",
                    f"{eos['single_records_per_s']:,} records/s / {eos['envelope_events_per_s']:,} events/s", "", "",
                    None))
    runs = e.get("latency_runs_ms", [e["latency_ms"]])
    p99s = [run["p99"] for run in runs]
    recovery_target = 6 if engine == "faust" else 10  # issue 25 for Faust; issue 14's for Quix
    return out + [
        (f"{engine}: latency AttemptFinalized -> banked fact p50/p95/p99, {len(runs)} runs in a row",
         ", ".join("/".join("-" if v is None else f"{v:,.0f}" for v in run.values()) for run in runs) + " ms",
         f"p99 <= 100 ms in each of {len(runs)}", "MISS" if None in p99s else check(max(p99s) <= 100), LATENCY_BOUND),
        (f"{engine}: recovery of 100k pairs (restart without disk to ready)", f"{e['recovery_s_100k_pairs']:.1f} s",
         f"<= {recovery_target} s", check(e["recovery_s_100k_pairs"] <= recovery_target), profiles.get("recovery")),
        (f"{engine}: replay --generation 2", f"{e['replay_events_per_s']:,} events/s", "", "", None),
        (f"{engine}: state bytes per pair / RSS per 100k pairs",
         f"{e['bytes_per_pair']:,.0f} B / {e['rss_mb_per_100k_pairs']:,.1f} MB", "", "", None),
    ]


def markdown(s: dict, f: dict) -> str:
    m = s["machine"]
    lines = ["| figure | value | target | |", "|---|---|---|---|"]
    table = rows(s, f)
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d, _ in table]
    lines.append("")
    lines.append(f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['ram_gb']} GB RAM, Python {m['python']} "
                 f"({m['interpreter']}), "
                 f"Kafka {m['kafka']} (single local broker; the replication rows: also three local brokers); "
                 f"BENCH_SCALE={f['scale']}; run {f['run']} took "
                 f"{f['total_s'] / 60:.1f} min.")
    misses = [(name, bound) for name, _, _, status, bound in table if status == "MISS" and bound is not None]
    if misses:
        lines += ["", "## What bounds each miss", ""]
        lines += [f"- **{name}**: {bound.get('note') or describe(bound)}" for name, bound in misses]
    return "\n".join(lines) + "\n"


def write(s: dict, f: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(s, f)
    print()
    print(table)
    (out / "latest.json").write_bytes(orjson.dumps(s | {"details": f}, option=orjson.OPT_INDENT_2) + b"\n")
    (out / f"{date.today().isoformat()}.md").write_text(f"# xpbank benchmarks, {date.today().isoformat()}\n\n" + table)
