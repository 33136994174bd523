"""The Prometheus rules (deploy/prometheus/rules) pass `promtool check rules` and their
unit tests (`promtool test rules`), every alert has a test in which it fires, and the
scrape configs (compose, Kubernetes) pass `promtool check config`. promtool is Debian's
(deploy/prometheus/promtool.sh unpacks it on first use; no daemon runs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.conftest import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(PROMETHEUS / "promtool.sh"), *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def alerts() -> dict[str, Path]:
    return {rule["alert"]: path for path in sorted((PROMETHEUS / "rules").glob("*.rules.yml"))
            for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"] if "alert" in rule}


def test_the_rules_are_valid_and_their_unit_tests_pass():
    checked = promtool("check", "rules", *map(str, sorted((PROMETHEUS / "rules").glob("*.rules.yml"))))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", *map(str, sorted((PROMETHEUS / "tests").glob("*.test.yml"))))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.count("SUCCESS") == len(list((PROMETHEUS / "tests").glob("*.test.yml")))


def test_every_alert_has_a_unit_test_in_which_it_fires_and_sinks_have_their_own_file():
    fired = {}
    for path in (PROMETHEUS / "tests").glob("*.test.yml"):
        doc = yaml.safe_load(path.read_text())
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                if case["exp_alerts"]:
                    fired.setdefault(case["alertname"], set()).update(doc["rule_files"])
    found = alerts()
    assert set(found) - set(fired) == set()
    assert {name for name, path in found.items() if path.name == "sinks.rules.yml"} == {
        name for name in found if name.startswith("XpbankSink")}


def test_the_scrape_configs_are_valid_and_send_the_operations_token(tmp_path):
    token = tmp_path / "token"
    token.write_text("t" * 40)
    for name in ("prometheus.yml", "kubernetes.yml"):
        config = yaml.safe_load((PROMETHEUS / name).read_text())
        for job in config["scrape_configs"]:
            assert job["job_name"].startswith("xpbank") and job["authorization"]["credentials_file"]
            job["authorization"]["credentials_file"] = str(token)  # the Secret's file, as mounted
            if "kubernetes_sd_configs" in job:  # Debian's promtool is built without Kubernetes discovery
                job["static_configs"] = [{"targets": ["pod:6066"]}]
                del job["kubernetes_sd_configs"]
        config["rule_files"] = [str(PROMETHEUS / "rules" / "*.rules.yml")]
        copy = tmp_path / name
        copy.write_text(yaml.safe_dump(config))
        checked = promtool("check", "config", str(copy))
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_compose_runs_prometheus_with_these_files_and_the_metrics_token():
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    prometheus = compose["services"]["prometheus"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in prometheus["volumes"]}
    assert (ROOT / "deploy" / mounts["/etc/prometheus/prometheus.yml"]).resolve() == PROMETHEUS / "prometheus.yml"
    assert (ROOT / "deploy" / mounts["/etc/prometheus/rules"]).resolve() == PROMETHEUS / "rules"
    assert prometheus["secrets"] == ["metrics-token"] and prometheus["image"].endswith(":v2.42.0")  # promtool's version
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert {job["authorization"]["credentials_file"] for job in config["scrape_configs"]} == {"/run/secrets/metrics-token"}
    targets = {t.split(":")[0] for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert targets <= set(compose["services"])
