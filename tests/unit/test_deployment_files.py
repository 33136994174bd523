"""The deployment files (Dockerfile, deploy/docker-compose.yml, deploy/k8s/) agree with the
code: every XPBANK_* variable they name exists, every `xpbank` command they run parses,
and the web port, data directory, images and Kafka version are the ones the code and the
local scripts use. No Docker or cluster needed: the files are parsed, not run."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import stat
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from xpbank.cli.main import parser
from xpbank.config import DEFAULTS, SECRETS, ApiTokens, Settings
from xpbank.gateway.settings import GatewaySettings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
K8S = ROOT / "deploy" / "k8s"
POM = ROOT / "deploy" / "kafka" / "pom.xml"

WEB_PORT = int(DEFAULTS["XPBANK_WEB_PORT"])
GATEWAY_PORT = int(DEFAULTS["XPBANK_GATEWAY_PORT"])  # the gateway's files: test_gateway_deployment.py


# What the Secrets hold, by file name, for reading the deployments' settings here.
SECRET_SAMPLES = {
    "api-tokens": '{"t-ops-0123456789abcdef0123456789": {"name": "ops", "scopes": ["learners", "operations"]}}',
    "api-tokens.json": '{"t-ops-0123456789abcdef0123456789": {"name": "ops", "scopes": ["learners", "operations"]}}',
    "gateway-tokens": '{"t-app-0123456789abcdef0123456789": {"name": "app", "may": ["caliper"]}}',
    "tokens.json": '{"t-app-0123456789abcdef0123456789": {"name": "app", "may": ["caliper"]}}',
    "redis-password": "pw",
    "redis-url": "redis://:pw@redis:6379/0",
    "kafka-username": "xpbank",
    "kafka-password": "pw",
    "kafka-ca.crt": "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
    "oneroster-token": "t-or", "caliper-token": "t-ca",  # the write-back servers' (test_sink_deployment.py)
    "oneroster-client-id": "xpbank", "oneroster-client-secret": "s", "caliper-client-id": "xpbank",
    "caliper-client-secret": "s",
}
SECRET_DIRS = ("/run/secrets/", "/etc/xpbank/", "/etc/xpbank-gateway/")
_samples = tempfile.TemporaryDirectory(prefix="xpbank-secrets-")
for _name, _text in SECRET_SAMPLES.items():
    Path(_samples.name, _name).write_text(_text)


def secret_paths(env: dict[str, str]) -> dict[str, str]:
    """The settings of `env` that name a file a Secret provides: {variable: path}."""
    return {k: v for k, v in env.items() if k.endswith("_FILE") and v.startswith(SECRET_DIRS)}


def runnable(env: dict[str, str]) -> dict[str, str]:
    """`env` with each Secret file replaced by a sample of the same name (as mounted)."""
    return env | {k: str(Path(_samples.name, Path(v).name)) for k, v in secret_paths(env).items()}


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def manifests() -> list[dict]:
    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def kind(name: str) -> list[dict]:
    return [doc for doc in manifests() if doc["kind"] == name]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def dockerfile_env() -> dict[str, str]:
    return dict(pair.split("=", 1) for instr, args in dockerfile() if instr == "ENV" for pair in shlex.split(args))


def dockerfile_value(instruction: str) -> str:
    return [args for instr, args in dockerfile() if instr == instruction][-1]


def pod_specs() -> list[dict]:
    return [doc["spec"]["template"]["spec"] for doc in manifests() if doc["kind"] in ("StatefulSet", "Deployment", "Job")]


def containers() -> list[dict]:
    return [c for spec in pod_specs() for c in spec["containers"]]


def xpbank_services() -> dict[str, dict]:
    return {name: s for name, s in compose()["services"].items() if s["image"].startswith("xpbank:")}


def brokers() -> dict[str, dict]:
    return {name: s for name, s in compose()["services"].items() if s["image"].startswith("apache/kafka:")}


def k8s_env(container: dict) -> dict[str, str]:
    """A container's environment as the pod sees it (fieldRefs as placeholders)."""
    env = {}
    for source in container.get("envFrom", []):
        env.update(next(m["data"] for m in kind("ConfigMap") if m["metadata"]["name"] == source["configMapRef"]["name"]))
    env.update({e["name"]: e.get("value", "<fieldRef>") for e in container.get("env", [])})
    return env


def every_xpbank_environment() -> list[dict[str, str]]:
    return [runnable(s["environment"]) for s in xpbank_services().values()] + [runnable(k8s_env(c)) for c in containers()]


def test_every_xpbank_variable_named_is_a_configuration_variable():
    texts = [DOCKERFILE.read_text(), COMPOSE.read_text()] + [p.read_text() for p in K8S.glob("*.yaml")]
    named = {name for text in texts for name in re.findall(r"XPBANK_[A-Z0-9_]+", text)}
    assert named - set(DEFAULTS) - {f"{name}_FILE" for name in SECRETS} == set()
    assert {"XPBANK_BROKER", "XPBANK_DATA_DIR", "XPBANK_INSTANCE_ID"} <= named


# ---- secrets: from Secrets, as files; never a value in the files ------------------------


def test_no_deployment_file_holds_a_secret_value():
    plain_secrets = {*SECRETS, "XPBANK_GATEWAY_TOKENS"}
    for env in [s["environment"] for s in xpbank_services().values()] + [k8s_env(c) for c in containers()]:
        assert plain_secrets & set(env) == set(), "a secret's value set in the open: use NAME_FILE and a Secret"
        assert {"XPBANK_API_TOKENS_FILE", "XPBANK_REDIS_URL_FILE"} <= set(env)  # the URL carries Redis's password
    for container in containers():  # Kubernetes: a secured Kafka (compose: plaintext on its own network)
        assert {"XPBANK_KAFKA_USERNAME_FILE", "XPBANK_KAFKA_PASSWORD_FILE", "XPBANK_KAFKA_CA_FILE"} <= set(k8s_env(container))
        assert Settings.from_env(runnable(k8s_env(container))).kafka.sasl
    assert "requirepass" not in json.dumps(compose()["services"]["redis"]["command"]).replace("requirepass %s", "")


def test_compose_services_mount_every_secret_file_they_name():
    declared = compose()["secrets"]
    for name, service in compose()["services"].items():
        for variable, path in secret_paths(service.get("environment", {})).items():
            secret = path.removeprefix("/run/secrets/")
            assert path.startswith("/run/secrets/") and secret in service.get("secrets", []), (name, variable)
        for secret in service.get("secrets", []):
            assert declared[secret]["file"] == f"./secrets/{secret}"
    made = set(re.findall(r"make_secret ([\w-]+) ", (ROOT / "deploy" / "compose-secrets.sh").read_text()))
    assert made == set(declared)


def test_every_pod_mounts_the_secret_files_its_settings_name():
    for spec in pod_specs():
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in spec["containers"]:
            mounts = {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", []) if m["name"] in volumes}
            for variable, path in secret_paths(k8s_env(container)).items():
                directory, file = path.rsplit("/", 1)
                volume = mounts.get(directory)
                assert volume is not None, f"{container['name']}: {variable} names {path}, which no Secret mounts"
                sources = volume["projected"]["sources"] if "projected" in volume else [{"secret": volume["secret"]}]
                files = {item["path"] for source in sources for item in source["secret"].get("items", [])}
                files |= {"tokens.json"} if any("items" not in source["secret"] for source in sources) else set()
                assert file in files, f"{container['name']}: {variable} names {file}, not a key of its Secrets"


def test_compose_secrets_script_makes_every_secret_once_private_and_valid(tmp_path):
    script = tmp_path / "deploy" / "compose-secrets.sh"
    script.parent.mkdir()
    script.write_text((ROOT / "deploy" / "compose-secrets.sh").read_text())
    assert subprocess.run(["bash", str(script)], capture_output=True, timeout=30).returncode == 0
    made = tmp_path / "deploy" / "secrets"
    first = {p.name: p.read_text() for p in made.iterdir()}
    assert set(first) == set(compose()["secrets"])
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o700
    tokens = {secret.reveal(): scopes for secret, _, scopes in ApiTokens.parse(first["api-tokens"]).scopes}
    assert len(tokens) == 2 and tokens[first["metrics-token"].strip()] == {"operations"}  # Prometheus's: metrics only
    password = first["redis-password"].strip()
    assert len(password) >= 32 and first["redis-url"].strip() == f"redis://:{password}@redis:6379/0"
    env = {"XPBANK_GATEWAY_TOKENS_FILE": str(made / "gateway-tokens"), "XPBANK_REDIS_URL_FILE": str(made / "redis-url")}
    assert GatewaySettings.from_env(env).tokens
    subprocess.run(["bash", str(script)], capture_output=True, timeout=30, check=True)
    assert {p.name: p.read_text() for p in made.iterdir()} == first  # a second run changes nothing


def test_every_environment_is_a_valid_configuration():
    for env in every_xpbank_environment():
        settings = Settings.from_env(env)
        assert settings.web_port == WEB_PORT and settings.store.startswith("rocksdb://")


def test_the_web_port_is_the_configured_one_everywhere():
    assert dockerfile_value("EXPOSE").split() == [str(WEB_PORT), str(GATEWAY_PORT)]
    workers = {name: s for name, s in xpbank_services().items() if s["command"] == ["worker"]}
    assert len(workers) == 2
    for service in workers.values():
        assert f"127.0.0.1:{WEB_PORT}/healthz'" in service["healthcheck"]["test"][-1]
        assert [int(p.rsplit(":", 1)[1]) for p in service["ports"]] == [WEB_PORT]
    [worker] = [c for c in containers() if c["args"] == ["worker"]]
    assert worker["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": WEB_PORT}
    assert worker["livenessProbe"]["tcpSocket"]["port"] == WEB_PORT
    assert [p["containerPort"] for p in worker["ports"]] == [WEB_PORT]
    for service in kind("Service"):
        if service["spec"]["selector"]["app.kubernetes.io/component"] != "gateway":
            assert [p["targetPort"] for p in service["spec"]["ports"]] == [WEB_PORT]


def parses(command: list[str]) -> bool:
    try:
        parser().parse_args(command)
    except SystemExit:
        return False
    return True


def test_commands_are_xpbank_subcommands():
    assert json.loads(dockerfile_value("ENTRYPOINT")) == ["xpbank"]  # exec form is JSON
    assert json.loads(dockerfile_value("CMD")) == ["worker"] and parses(["worker"])
    commands = [s["command"] for s in xpbank_services().values()] + [c["args"] for c in containers()]
    assert all("command" not in c for c in containers()), "keep the image's xpbank entrypoint: use args"
    assert [c for c in commands if not parses(c)] == []
    assert not parses(["topics", "delete"])  # the check itself can fail
    assert sorted(map(" ".join, commands)) == ["api", "gateway", "gateway", "projector", "projector", "sink caliper",
                                                "sink caliper", "sink oneroster", "sink oneroster", "topics create",
                                                "topics create", "worker", "worker", "worker"]
    [job] = kind("Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["topics", "create"]


def test_the_image_is_the_one_the_dockerfile_builds():
    assert re.fullmatch(r"python:3\.11-slim", dockerfile_value("FROM"))
    assert dockerfile_value("USER") not in ("root", "0")
    for service in xpbank_services().values():
        assert (COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == DOCKERFILE
    images = {s["image"] for s in xpbank_services().values()} | {c["image"] for c in containers()}
    assert images == {"xpbank:latest"}
    for spec in pod_specs():
        assert str(spec["securityContext"]["runAsUser"]) == dockerfile_value("USER")


def test_kafka_image_is_the_version_the_local_scripts_run():
    version = re.search(r"<kafka.version>(.+)</kafka.version>", POM.read_text()).group(1)
    assert "<kafka.version>" in (ROOT / "deploy" / "kafka" / "kafka.sh").read_text()  # kafka.sh reads it from there
    assert {s["image"] for s in brokers().values()} == {f"apache/kafka:{version}"}


def test_compose_brokers_form_one_three_voter_kraft_quorum():
    nodes = brokers()
    assert len(nodes) == 3
    ids = {name: int(s["environment"]["KAFKA_NODE_ID"]) for name, s in nodes.items()}
    assert len(set(ids.values())) == 3
    for name, service in nodes.items():
        env = service["environment"]
        controller_port = re.search(r"CONTROLLER://[^,]*:(\d+)", env["KAFKA_LISTENERS"]).group(1)
        voters = {tuple(v.split("@")) for v in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")}
        assert voters == {(str(i), f"{n}:{controller_port}") for n, i in ids.items()}
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == 3
        assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
        assert service["hostname"] == name
    assert len({s["environment"]["CLUSTER_ID"] for s in nodes.values()}) == 1


def test_compose_xpbank_services_reach_the_compose_brokers_and_redis():
    nodes = brokers()
    advertised = ",".join(s["environment"]["KAFKA_ADVERTISED_LISTENERS"] for s in nodes.values())
    internal = {f"{host}:{port}" for host, port in re.findall(r"//([\w-]+):(\d+)", advertised) if host in nodes}
    assert len(internal) == 3
    for name, service in xpbank_services().items():
        settings = Settings.from_env(runnable(service["environment"]))
        assert set(settings.bootstrap_servers.split(",")) == internal, name
        assert urlsplit(settings.redis_url).hostname in compose()["services"]
        assert set(service["depends_on"]) <= set(compose()["services"])
    assert {n: c["condition"] for n, c in xpbank_services()["topics"]["depends_on"].items()} == dict.fromkeys(nodes, "service_healthy")


def test_compose_workers_are_distinct_static_members_with_their_own_data():
    data_dir = dockerfile_env()["XPBANK_DATA_DIR"]
    workers = [s for s in xpbank_services().values() if s["command"] == ["worker"]]
    assert len({w["environment"]["XPBANK_INSTANCE_ID"] for w in workers}) == len(workers) == 2
    assert len({w["volumes"][0] for w in workers}) == 2
    for worker in workers:
        assert worker["environment"]["XPBANK_PROJECTOR"] == "0"
        assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert worker["environment"].get("XPBANK_DATA_DIR", data_dir) == data_dir
        assert [v.split(":")[1] for v in worker["volumes"]] == [data_dir]
        assert worker["volumes"][0].split(":")[0] in compose()["volumes"]
    [projector] = [s for s in xpbank_services().values() if s["command"] == ["projector"]]
    assert projector["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_worker_statefulset_keeps_rocksdb_on_a_volume_and_is_ready_on_healthz():
    data_dir = dockerfile_env()["XPBANK_DATA_DIR"]
    [sts] = kind("StatefulSet")
    spec = sts["spec"]
    [container] = spec["template"]["spec"]["containers"]
    [claim] = spec["volumeClaimTemplates"]
    assert [m["mountPath"] for m in container["volumeMounts"] if m["name"] == claim["metadata"]["name"]] == [data_dir]
    assert k8s_env(container).get("XPBANK_DATA_DIR", data_dir) == data_dir
    [instance] = [e for e in container["env"] if e["name"] == "XPBANK_INSTANCE_ID"]
    assert instance["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert k8s_env(container)["XPBANK_PROJECTOR"] == "0"
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"] and spec["template"]["spec"]["terminationGracePeriodSeconds"] >= 30
    assert spec["replicas"] == 2 <= int(k8s_env(container)["XPBANK_PARTITIONS"])
    [headless] = [s for s in kind("Service") if s["metadata"]["name"] == spec["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize("workload", ["StatefulSet", "Deployment", "Job"])
def test_selectors_match_pod_labels(workload):
    for doc in kind(workload):
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert doc["spec"].get("selector", {}).get("matchLabels", {}).items() <= labels.items()
        for source in doc["spec"]["template"]["spec"]["containers"][0]["envFrom"]:
            assert source["configMapRef"]["name"] in {m["metadata"]["name"] for m in kind("ConfigMap")}


def test_the_worker_service_selects_the_workers_and_the_api_service_the_api_pods():
    templates = {doc["metadata"]["name"]: doc["spec"]["template"]["metadata"]["labels"]
                 for doc in kind("StatefulSet") + kind("Deployment")}
    services = {s["metadata"]["name"]: s["spec"]["selector"] for s in kind("Service")}
    for service, workload in (("xpbank-worker", "xpbank-worker"), ("xpbank-api", "xpbank-api")):
        assert [name for name, labels in templates.items() if services[service].items() <= labels.items()] == [workload]


def test_kustomization_lists_every_manifest():
    [kustomization] = kind("Kustomization")
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)
    for doc in manifests():
        assert doc["apiVersion"] and (doc["kind"] == "Kustomization" or doc["metadata"]["name"])
        assert "namespace" not in doc.get("metadata", {}), "namespace-free: choose it at apply time"


def test_replication_fits_the_compose_cluster_and_survives_one_broker():
    nodes = brokers()
    min_isr = {int(s["environment"]["KAFKA_MIN_INSYNC_REPLICAS"]) for s in nodes.values()}
    for name, service in xpbank_services().items():
        replicas = Settings.from_env(runnable(service["environment"])).replication_factor
        assert replicas <= len(nodes), name  # more replicas than brokers: topics create fails
        assert all(replicas > isr for isr in min_isr), name  # a broker down must not stop writes
    k8s = {Settings.from_env(runnable(k8s_env(c))).replication_factor for c in containers()}
    assert k8s == {3}
