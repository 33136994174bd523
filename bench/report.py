"""The benchmark summary: the keys of issue 14 (and the gateway's), a table with targets,
latest.json and a dated markdown copy."""

from __future__ import annotations

import os
import platform
import re
from datetime import date
from pathlib import Path

import orjson

from bench.gateway import gateway_rows, summary as gateway_summary
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
            "python": platform.python_version(), "kafka": kafka.group(1) if kafka else None,
            "os": f"{platform.system()} {platform.release()}"}


def _recovery(state: dict, startup_s: float, pairs: int) -> float:
    """Restart without local state to "Worker ready"; at BENCH_SCALE<1 the part above a
    fresh start is scaled to 100k pairs."""
    return round(startup_s + max(state["recovery_s"] - startup_s, 0) * PAIRS_100K / pairs, 2)


def _engine(f: dict, engine: str) -> dict:
    single, envelope = f["single"][engine], f["envelope"][engine]
    state, lat = f["engines"][engine]["state"], f["engines"][engine]["latency"]
    pairs = state["pairs"]
    return {
        "single_records_per_s": round(single["records_per_s"]),
        "envelope_events_per_s": round(envelope["events_per_s"]),
        "latency_ms": {k: None if v is None else round(v, 1) for k, v in lat["banked"].items()},
        "recovery_s_100k_pairs": _recovery(state, envelope["startup_s"], pairs),
        "replay_events_per_s": round(state["replay_events_per_s"]),
        "bytes_per_pair": round(state["store_bytes"] / pairs, 1),
        "rss_mb_per_100k_pairs": round((envelope["rss_end_mb"] - envelope["rss_start_mb"]) * PAIRS_100K / pairs, 1),
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
    if "quix_exactly_once" in single:
        out["engines"]["quix"]["exactly_once"] = {
            "single_records_per_s": round(single["quix_exactly_once"]["records_per_s"]),
            "envelope_events_per_s": round(envelope["quix_exactly_once"]["events_per_s"])}
    return (out | (gateway_summary(f["gateway"]) if "gateway" in f else {})
            | (sinks_summary(f["sinks"]) if "sinks" in f else {}))


def rows(s: dict, f: dict) -> list[tuple[str, str, str, str]]:
    """(figure, value, target, PASS/MISS/-)."""
    def check(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    peers, engines = s["peers"], s["engines"]
    out = [
        ("core in-process (handle_record, no Kafka): single heartbeats", f"{s['core_single_events_per_s']:,} events/s",
         ">= 150,000", check(s["core_single_events_per_s"] >= 150_000)),
        ("core in-process: 20-event envelopes", f"{s['core_envelope_events_per_s']:,} events/s", ">= 300,000",
         check(s["core_envelope_events_per_s"] >= 300_000)),
        ("peer: raw ceiling (aiokafka + orjson), singles / envelopes",
         f"{peers['raw_records_per_s']:,} records/s / {peers['raw_envelope_events_per_s']:,} events/s", "", ""),
    ]
    names = {"quix": "Quix Streams read-time sum", "faust_floor": "Faust floor (agent only iterates)",
             "faust_table": "naive Faust table (a write per record)"}
    out += [(f"peer: {names[n]}, singles", f"{peers[f'{n}_records_per_s']:,} records/s", "", "")
            for n in names if f"{n}_records_per_s" in peers]
    if "quix_envelope_events_per_s" in peers:
        out.append(("peer: Quix Streams read-time sum, envelopes", f"{peers['quix_envelope_events_per_s']:,} events/s",
                    "", ""))
    for engine, e in engines.items():
        single, envelope, p99 = e["single_records_per_s"], e["envelope_events_per_s"], e["latency_ms"]["p99"]
        if engine == "quix" and "quix_records_per_s" in peers:
            out.append(("quix: singles", f"{single:,} records/s ({single / peers['quix_records_per_s']:.0%} of the peer)",
                        ">= 50% of the Quix peer", check(single >= 0.5 * peers["quix_records_per_s"])))
        elif engine == "faust" and "faust_floor_records_per_s" in peers:
            floor, table = peers["faust_floor_records_per_s"], peers.get("faust_table_records_per_s", 0)
            out.append(("faust: singles", f"{single:,} records/s ({single / floor:.0%} of the floor)",
                        ">= 60% of the floor, > naive table", check(single >= 0.6 * floor and single > table)))
        else:
            out.append((f"{engine}: singles", f"{single:,} records/s", "", ""))
        out.append((f"{engine}: envelopes x20", f"{envelope:,} events/s", ">= 100,000" if engine == "quix" else "",
                    check(envelope >= 100_000) if engine == "quix" else ""))
        if "exactly_once" in e:
            eos = e["exactly_once"]
            out.append((f"{engine} exactly-once: singles / envelopes",
                        f"{eos['single_records_per_s']:,} records/s / {eos['envelope_events_per_s']:,} events/s", "", ""))
        out += [
            (f"{engine}: latency AttemptFinalized -> banked fact p50/p95/p99",
             "/".join("-" if v is None else f"{v:,.0f}" for v in e["latency_ms"].values()) + " ms", "p99 <= 100 ms",
             "MISS" if p99 is None else check(p99 <= 100)),
            (f"{engine}: recovery of 100k pairs (restart without disk to ready)", f"{e['recovery_s_100k_pairs']:.1f} s",
             "<= 10 s", check(e["recovery_s_100k_pairs"] <= 10)),
            (f"{engine}: replay --generation 2", f"{e['replay_events_per_s']:,} events/s", "", ""),
            (f"{engine}: state bytes per pair / RSS per 100k pairs",
             f"{e['bytes_per_pair']:,.0f} B / {e['rss_mb_per_100k_pairs']:,.1f} MB", "", ""),
        ]
    return (out + (gateway_rows(s) if "gateway_single_requests_per_s" in s else [])
            + (sink_rows(s) if "sink_oneroster_results_per_s" in s else []))


def markdown(s: dict, f: dict) -> str:
    m = s["machine"]
    lines = ["| figure | value | target | |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(s, f)]
    lines.append("")
    lines.append(f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['ram_gb']} GB RAM, Python {m['python']}, "
                 f"Kafka {m['kafka']} (single local broker); BENCH_SCALE={f['scale']}; run {f['run']} took "
                 f"{f['total_s'] / 60:.1f} min.")
    return "\n".join(lines) + "\n"


def write(s: dict, f: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    table = markdown(s, f)
    print()
    print(table)
    (out / "latest.json").write_bytes(orjson.dumps(s | {"details": f}, option=orjson.OPT_INDENT_2) + b"\n")
    (out / f"{date.today().isoformat()}.md").write_text(f"# xpbank benchmarks, {date.today().isoformat()}\n\n" + table)
