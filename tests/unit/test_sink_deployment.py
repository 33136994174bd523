"""The write-back sinks' deployment files: compose runs them only under the `sinks`
profile, Kubernetes as Deployments; both with settings a sink accepts, the port its
probes and healthchecks use, and credentials read from Secrets through `_FILE`."""

from __future__ import annotations

import re

from tests.unit.test_deployment_files import compose, containers, k8s_env, kind, parses, runnable
from xpbank.config import DEFAULTS
from xpbank.sinks.settings import CaliperSettings, OneRosterSettings

PORTS = {"oneroster": int(DEFAULTS["XPBANK_ONEROSTER_SINK_PORT"]), "caliper": int(DEFAULTS["XPBANK_CALIPER_SINK_PORT"])}
SETTINGS = {"oneroster": OneRosterSettings, "caliper": CaliperSettings}


def interpolated(env: dict[str, str]) -> dict[str, str]:
    """Compose's `${NAME:-default}` as compose reads it when NAME is not set."""
    return {k: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", v) for k, v in env.items()}


def test_compose_runs_each_sink_only_when_asked_on_its_port():
    for name, port in PORTS.items():
        service = compose()["services"][f"sink-{name}"]
        assert service["command"] == ["sink", name] and parses(service["command"])
        assert service["profiles"] == ["sinks"]  # `docker compose up` alone starts neither
        settings = SETTINGS[name].from_env(runnable(interpolated(service["environment"])))
        assert settings.port == port and [p.rsplit(":", 1)[1] for p in service["ports"]] == [str(port)]
        assert f"127.0.0.1:{port}/healthz'" in service["healthcheck"]["test"][-1]
        assert settings.delivery.credentials.token.reveal()  # from its secret file
    oneroster = OneRosterSettings.from_env(runnable(interpolated(compose()["services"]["sink-oneroster"]["environment"])))
    assert oneroster.naming.line_item.text == "{resource}_ali"  # switching over from the replaced system


def test_kubernetes_runs_each_sink_as_a_deployment_ready_on_healthz_with_oauth2_from_a_secret():
    deployments = {d["metadata"]["name"]: d for d in kind("Deployment")}
    for name, port in PORTS.items():
        [container] = deployments[f"xpbank-sink-{name}"]["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ["sink", name] and parses(container["args"])
        env = k8s_env(container)
        settings = SETTINGS[name].from_env(runnable(env))
        assert settings.port == port and [p["containerPort"] for p in container["ports"]] == [port]
        assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
        assert container["livenessProbe"]["tcpSocket"]["port"] == port
        credentials = settings.delivery.credentials
        assert credentials.oauth2 and credentials.client_secret.reveal()
        assert not any(k.endswith(("_TOKEN", "_CLIENT_ID", "_CLIENT_SECRET")) for k in env)  # values only from files
    assert sum(1 for c in containers() if c["args"][:1] == ["sink"]) == 2
