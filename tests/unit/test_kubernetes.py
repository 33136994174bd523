"""The Kubernetes manifests as kustomize renders them (the base deploy/k8s, the plaintext
overlay deploy/k8s-overlays/plaintext, the replay Job deploy/k8s/replay): valid against
the Kubernetes schemas (kubernetes-validate, offline), every pod within the `restricted`
Pod Security Standard, the plaintext pods able to start, and the workload shapes the
runbooks rely on (the API apart from the workers, disruption budgets, a rolling upgrade
that fits in the session timeout). kustomize: deploy/k8s/kustomize.sh (built once)."""

from __future__ import annotations

import functools
import subprocess

import kubernetes_validate
import pytest
import yaml

from tests.unit.test_deployment_files import ROOT, parses, runnable, secret_paths
from xpbank.config import Settings
from xpbank.gateway.settings import GatewaySettings

RENDERS = {"base": "deploy/k8s", "plaintext": "deploy/k8s-overlays/plaintext", "replay": "deploy/k8s/replay"}
VERSIONS = ("1.30", "1.37")  # an older supported cluster and the newest schemas shipped
WORKLOADS = ("StatefulSet", "Deployment", "Job")


@functools.cache
def rendered(name: str) -> tuple[dict, ...]:
    result = subprocess.run(["bash", str(ROOT / "deploy/k8s/kustomize.sh"), "build", str(ROOT / RENDERS[name])],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of(name: str, kind: str) -> list[dict]:
    return [doc for doc in rendered(name) if doc["kind"] == kind]


def pods(name: str) -> list[tuple[str, dict]]:
    return [(doc["metadata"]["name"], doc["spec"]["template"]["spec"]) for doc in rendered(name) if doc["kind"] in WORKLOADS]


def environment(name: str, container: dict) -> dict[str, str]:
    """A container's environment as the pod sees it, from the rendered ConfigMap."""
    [config] = [m for m in of("base" if name == "replay" else name, "ConfigMap")]
    env = dict(config["data"]) if container.get("envFrom") else {}
    return env | {e["name"]: e.get("value", "<fieldRef>") for e in container.get("env", [])}


@pytest.mark.parametrize("name", RENDERS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(name):
    for doc in rendered(name):
        for version in VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)  # unknown fields are errors too


def restricted_violations(spec: dict) -> list[str]:
    """What breaks the `restricted` Pod Security Standard (its baseline part included)."""
    found = []
    pod = spec.get("securityContext", {})
    allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
    found += [f"volume {v['name']}" for v in spec.get("volumes", []) if set(v) - {"name"} - allowed_volumes]
    found += [key for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key)]
    for container in spec.get("initContainers", []) + spec["containers"]:
        mine = container.get("securityContext", {})
        where = container["name"]
        if mine.get("allowPrivilegeEscalation") is not False:
            found.append(f"{where}: allowPrivilegeEscalation is not false")
        if mine.get("privileged"):
            found.append(f"{where}: privileged")
        if mine.get("capabilities", {}).get("drop") != ["ALL"] or set(mine.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            found.append(f"{where}: capabilities must drop ALL")
        if not mine.get("runAsNonRoot", pod.get("runAsNonRoot")) or mine.get("runAsUser", pod.get("runAsUser")) in (0, None):
            found.append(f"{where}: must run as a non-root user")
        seccomp = mine.get("seccompProfile", pod.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(f"{where}: seccompProfile {seccomp}")
        if any(port.get("hostPort") for port in container.get("ports", [])):
            found.append(f"{where}: hostPort")
    return found


def test_the_restricted_check_catches_what_it_must():
    assert restricted_violations({"containers": [{"name": "c"}], "volumes": [{"name": "h", "hostPath": {"path": "/"}}]}) == [
        "volume h", "c: allowPrivilegeEscalation is not false", "c: capabilities must drop ALL",
        "c: must run as a non-root user", "c: seccompProfile None"]


@pytest.mark.parametrize("name", RENDERS)
def test_every_pod_meets_the_restricted_pod_security_standard(name):
    assert {pod: restricted_violations(spec) for pod, spec in pods(name) if restricted_violations(spec)} == {}


def test_the_plaintext_overlay_starts_without_kafka_credentials_or_ca():
    for pod, spec in pods("plaintext"):
        optional = {item["path"] for volume in spec.get("volumes", []) for source in volume.get("projected", {}).get("sources", [])
                    if source["secret"].get("optional") for item in source["secret"]["items"]}
        for container in spec["containers"]:
            env = environment("plaintext", container)
            settings = Settings.from_env(runnable(env))  # a CA or a SASL user without TLS would be refused here
            assert settings.kafka.protocol == "PLAINTEXT" and not settings.kafka.ca_file, pod
            assert not {path.rsplit("/", 1)[1] for path in secret_paths(env).values()} & optional, pod
            assert {"kafka-username", "kafka-password", "kafka-ca.crt"} <= optional, pod  # present or not: it starts
            if container["args"] == ["gateway"]:
                assert GatewaySettings.from_env(runnable(env)).tokens
    assert [c["data"]["XPBANK_KAFKA_SECURITY_PROTOCOL"] for c in of("base", "ConfigMap")] == ["SASL_SSL"]


def test_the_api_is_its_own_deployment_behind_the_api_service():
    [api] = [d for d in of("base", "Deployment") if d["metadata"]["name"] == "xpbank-api"]
    [container] = api["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["api"] and parses(container["args"])
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz" and api["spec"]["replicas"] >= 2
    assert api["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    [service] = [s for s in of("base", "Service") if s["metadata"]["name"] == "xpbank-api"]
    assert service["spec"]["selector"].items() <= api["spec"]["template"]["metadata"]["labels"].items()


def test_every_long_running_workload_has_a_disruption_budget():
    budgets = of("base", "PodDisruptionBudget")
    for doc in of("base", "StatefulSet") + of("base", "Deployment"):
        labels = doc["spec"]["template"]["metadata"]["labels"]
        matching = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(matching) == 1, doc["metadata"]["name"]
        spec = matching[0]["spec"]
        assert spec.get("maxUnavailable") == 1 or 1 <= spec.get("minAvailable", 0) < doc["spec"]["replicas"]


def test_the_replay_job_replays_a_new_generation_on_a_volume_of_its_own():
    [job] = of("replay", "Job")
    assert not [d for d in of("base", "Job") if d["metadata"]["name"] == job["metadata"]["name"]]  # never applied by the base
    spec = job["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert parses(container["args"]) and container["args"][:2] == ["replay", "--generation"]
    env = environment("replay", container)
    assert int(container["args"][2]) > int(env["XPBANK_GENERATION"])
    assert [m["mountPath"] for m in container["volumeMounts"] if m["name"] == "data"] == [env["XPBANK_DATA_DIR"]]
    assert Settings.from_env(runnable(env)).kafka.sasl


def test_a_rolling_upgrade_of_the_workers_fits_in_the_session_timeout():
    [sts] = of("base", "StatefulSet")
    spec = sts["spec"]["template"]["spec"]
    [container] = spec["containers"]
    env = environment("base", container)
    assert sts["spec"]["updateStrategy"]["type"] == "RollingUpdate" and sts["spec"]["minReadySeconds"] > 0
    assert [e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"] if e["name"] == "XPBANK_INSTANCE_ID"] == ["metadata.name"]
    start = 15  # seconds from a new container to its consumer rejoining (imports, topic checks)
    session = Settings.from_env(runnable(env)).session_timeout_seconds
    assert spec["terminationGracePeriodSeconds"] + start <= session  # the stop and the start fit in it
