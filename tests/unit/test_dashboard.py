"""The Grafana dashboard (deploy/grafana/xpbank.json) is a dashboard Grafana imports:
unique panel ids, a grid without overlaps, a Prometheus query in every panel through the
datasource variable, and a row for each thing an operator watches."""

from __future__ import annotations

import json
from pathlib import Path

DASHBOARD = json.loads((Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "xpbank.json").read_text())


def test_panels_have_unique_ids_and_do_not_overlap():
    panels = DASHBOARD["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        mine = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not mine & cells, panel["title"]
        cells |= mine


def test_every_panel_queries_prometheus_through_the_datasource_variable():
    assert [v["name"] for v in DASHBOARD["templating"]["list"] if v["type"] == "datasource"] == ["datasource"]
    for panel in (p for p in DASHBOARD["panels"] if p["type"] != "row"):
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
        assert all(t["expr"].strip() and t["refId"] for t in panel["targets"]), panel["title"]


def test_the_rows_cover_what_an_operator_watches():
    rows = [p["title"] for p in DASHBOARD["panels"] if p["type"] == "row"]
    assert rows == ["Throughput", "Lag and readiness", "Latency", "Dead letters", "Gateway", "Projector and API",
                    "Redis and the broker", "Sinks"]
    exprs = " ".join(t["expr"] for p in DASHBOARD["panels"] for t in p.get("targets", []))
    assert "max by (topic, partition) (xpbank_consumer_lag)" in exprs  # lag per partition
