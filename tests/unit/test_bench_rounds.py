"""`make bench` measures the single shape in rounds and reports each program's fastest
(bench/__main__.py best_of), each round's ratios beside (bench/report.py)."""

from bench.__main__ import best_of
from bench.report import _round_rows


def _round(floor: float, faust: float, quix_peer: float, quix: float, raw: float) -> dict:
    return {"records": 10, "raw": {"records_per_s": raw},
            "peers": {"faust_floor": {"records_per_s": floor}, "quix": {"records_per_s": quix_peer}},
            "faust": {"records_per_s": faust, "profile": f"faust at {faust}"},
            "quix": {"records_per_s": quix, "profile": f"quix at {quix}"}}


def test_each_program_keeps_its_fastest_round_with_that_rounds_profile():
    out = best_of([_round(7000, 4600, 30000, 20000, 900), _round(7800, 4400, 28000, 24000, 1000)], ["faust", "quix"])
    assert out["peers"]["faust_floor"]["records_per_s"] == 7800
    assert out["peers"]["quix"]["records_per_s"] == 30000
    assert out["faust"] == {"records_per_s": 4600, "profile": "faust at 4600"}
    assert out["quix"] == {"records_per_s": 24000, "profile": "quix at 24000"}
    assert out["raw"]["records_per_s"] == 1000
    assert out["rounds"] == [{"peers": {"faust_floor": 7000, "quix": 30000}, "engines": {"faust": 4600, "quix": 20000}},
                             {"peers": {"faust_floor": 7800, "quix": 28000}, "engines": {"faust": 4400, "quix": 24000}}]


def test_one_round_is_reported_as_measured():
    run = _round(7000, 4600, 30000, 20000, 900)
    assert best_of([run], ["faust", "quix"]) is run


def test_each_rounds_ratios_are_read_within_that_round():
    rows = _round_rows([{"peers": {"faust_floor": 8000, "quix": 30000}, "engines": {"faust": 4400, "quix": 24000}}])
    assert len(rows) == 1
    figure, value, _, _ = rows[0]
    assert figure == "singles, round 1 of 1 (records/s)"
    assert "faust 55% of the floor" in value and "quix 80% of the peer" in value
    assert "peer faust_floor 8,000" in value and "faust 4,400" in value
