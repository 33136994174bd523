"""The gateway's deployment files: its compose service, Kubernetes Deployment, Service and
HPA agree with the code (command, port, probes, settings) and with each other."""

from __future__ import annotations

from tests.unit.test_deployment_files import compose, containers, k8s_env, kind, parses, runnable
from xpbank.config import DEFAULTS
from xpbank.gateway.app import create_app
from xpbank.entrypoints.gateway import DRAIN_SECONDS
from xpbank.gateway.settings import GatewaySettings

PORT = int(DEFAULTS["XPBANK_GATEWAY_PORT"])


def gateway_deployment() -> dict:
    [deployment] = [d for d in kind("Deployment") if d["metadata"]["name"] == "xpbank-gateway"]
    return deployment


def test_compose_runs_one_gateway_on_its_port_ready_on_healthz():
    service = compose()["services"]["gateway"]
    assert service["command"] == ["gateway"] and parses(service["command"])
    settings = GatewaySettings.from_env(runnable(service["environment"]))
    assert settings.port == PORT and [p.rsplit(":", 1)[1] for p in service["ports"]] == [str(PORT)]
    assert service["ports"][0].startswith("127.0.0.1:")  # its dev token is good for loopback only
    assert f"127.0.0.1:{PORT}/healthz'" in service["healthcheck"]["test"][-1]
    assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert int(service["stop_grace_period"].rstrip("s")) > DRAIN_SECONDS + int(DEFAULTS["XPBANK_GATEWAY_ACK_TIMEOUT_SECONDS"])


def test_the_gateway_deployment_drains_before_it_is_killed_and_is_ready_on_healthz():
    deployment = gateway_deployment()
    spec = deployment["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert container["args"] == ["gateway"] and parses(container["args"])
    env = k8s_env(container)
    assert int(env["XPBANK_GATEWAY_PORT"]) == PORT and [p["containerPort"] for p in container["ports"]] == [PORT]
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": PORT}
    assert container["livenessProbe"]["tcpSocket"]["port"] == PORT
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    ack_timeout = int(DEFAULTS["XPBANK_GATEWAY_ACK_TIMEOUT_SECONDS"])  # the producer's last flush
    assert spec["terminationGracePeriodSeconds"] > pre_stop + DRAIN_SECONDS + ack_timeout
    [mount] = [m for m in container["volumeMounts"] if env["XPBANK_GATEWAY_TOKENS_FILE"].startswith(m["mountPath"] + "/")]
    [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert "secret" in volume and "XPBANK_GATEWAY_TOKENS" not in env  # tokens from a Secret, not the ConfigMap
    assert container["resources"]["requests"]["cpu"]  # the HPA's utilisation is relative to it


def test_the_gateway_service_and_hpa_point_at_the_gateway_pods():
    deployment = gateway_deployment()
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    [service] = [s for s in kind("Service") if s["metadata"]["name"] == "xpbank-gateway"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [PORT]
    assert not any(s["spec"]["selector"].items() <= labels.items() for s in kind("Service") if s["metadata"]["name"] != "xpbank-gateway")
    [hpa] = kind("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert 1 < hpa["spec"]["minReplicas"] <= deployment["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]


def test_every_gateway_container_environment_is_a_valid_gateway_configuration():
    gateways = [c for c in containers() if c["args"] == ["gateway"]]
    assert len(gateways) == 1
    assert create_app(GatewaySettings.from_env(runnable(k8s_env(gateways[0]))))  # routes built from the settings


def test_the_secured_brokers_gateway_user_may_write_exactly_the_input_topics():
    import re
    from pathlib import Path

    from xpbank.contract.topics import TOPICS

    script = (Path(__file__).resolve().parents[2] / "deploy/kafka/secure.sh").read_text()
    granted = re.search(r'^GATEWAY_TOPICS="([^"]*)"', script, re.M)[1].split()
    assert sorted(granted) == sorted(spec.name for spec in TOPICS if spec.direction.startswith("in"))
