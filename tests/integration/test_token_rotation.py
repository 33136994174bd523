"""Tokens rotate without a restart: a running `xpbank api` and `xpbank gateway` follow
their token files (as a Kubernetes Secret update or an operator's `mv` changes them)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request

from tests.conftest import ROOT
from tests.gateway_proc import Gateway, free_port, read_models_built
from tests.unit.test_token_files import api_file

OLD, NEW = "old-token-" + "a" * 30, "new-token-" + "b" * 30


def status(url: str, token: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _status_or_none(url: str, token: str) -> int | None:
    try:
        return status(url, token)
    except urllib.error.URLError as error:
        if isinstance(error.reason, ConnectionRefusedError):
            return None
        raise


def eventually_status(url: str, token: str, expected: int, timeout: float = 15) -> None:
    """Until `url` answers `expected` (a server not listening yet is "not yet": the API
    process may bind its port after the gateway the test waited for)."""
    deadline = time.monotonic() + timeout
    while (found := _status_or_none(url, token)) != expected:
        assert time.monotonic() < deadline, f"{url} answered {found}, not {expected}"
        time.sleep(0.2)


def test_the_api_and_the_gateway_take_new_tokens_from_their_files_without_a_restart(env, settings, tmp_path):
    api_tokens, gateway_tokens = tmp_path / "api-tokens.json", tmp_path / "gateway-tokens.json"
    api_file(api_tokens, OLD)
    gateway_tokens.write_text(json.dumps({OLD: {"name": "app", "may": ["caliper"]}}))
    env = {k: v for k, v in env.items() if k != "XPBANK_API_TOKENS"} | {
        "XPBANK_API_TOKENS_FILE": str(api_tokens), "XPBANK_WEB_PORT": str(free_port())}
    read_models_built(settings)  # no projector here: the API would answer 503 (never built)
    api = subprocess.Popen([str(ROOT / ".venv/bin/xpbank"), "api"], env=env, stdout=open(tmp_path / "api.log", "wb"),
                           stderr=subprocess.STDOUT, start_new_session=True)
    gateway = Gateway({k: v for k, v in env.items()}, tmp_path, XPBANK_GATEWAY_TOKENS="",
                      XPBANK_GATEWAY_TOKENS_FILE=str(gateway_tokens))
    try:
        gateway.start()
        xp = f"http://127.0.0.1:{env['XPBANK_WEB_PORT']}/users/u1/xp"
        gateway_metrics = f"http://127.0.0.1:{gateway.port}/metrics"
        eventually_status(xp, OLD, 200)
        assert status(gateway_metrics, OLD) == 200  # an operations token of the API reads the gateway's metrics
        assert gateway.post("/caliper/v1p2", b"{}", token=OLD)[0] == 400  # authenticated: the body is what is wrong

        api_file(api_tokens, NEW)
        (tmp_path / "gateway.new").write_text(json.dumps({NEW: {"name": "app", "may": ["caliper"]}}))
        os.replace(tmp_path / "gateway.new", gateway_tokens)

        eventually_status(xp, OLD, 401)
        assert status(xp, NEW) == 200
        eventually_status(gateway_metrics, OLD, 401)
        assert status(gateway_metrics, NEW) == 200
        assert gateway.post("/caliper/v1p2", b"{}", token=OLD)[0] == 401
        assert gateway.post("/caliper/v1p2", b"{}", token=NEW)[0] == 400
        assert api.poll() is None and gateway.process.poll() is None  # the same processes all along
        logs = (tmp_path / "api.log").read_text() + gateway.log()
        assert "XPBANK_API_TOKENS_FILE read again" in logs and OLD not in logs and NEW not in logs
    finally:
        gateway.stop()
        api.terminate()
        api.wait(30)
