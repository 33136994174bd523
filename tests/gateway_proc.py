"""`xpbank gateway` as a subprocess on a free port, and plain HTTP/1.1 requests to it."""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import orjson

from tests.conftest import ROOT
from xpbank.config import Settings
from xpbank.kafka.clients import read_topic
from xpbank.read.read_models import ReadModels

TOKEN = "test-token-all-0123456789abcdef0123456789"  # may send everything


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    COMMAND, PORT_VARIABLE = "gateway", "XPBANK_GATEWAY_PORT"

    def __init__(self, env: dict[str, str], tmp: Path, name: str = "gateway", **extra: str) -> None:
        self.port = free_port()
        self.env = env | {self.PORT_VARIABLE: str(self.port), "XPBANK_GATEWAY_TOKENS": TOKEN, **extra}
        self.log_path = tmp / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self, ready: bool = True) -> Gateway:
        """Start; with `ready`, until /healthz says the broker is reachable (else until it answers)."""
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([str(ROOT / ".venv/bin/xpbank"), self.COMMAND], env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, f"the gateway exited:\n{self.log()}"
            try:
                if self.request("GET", "/healthz")[0] == 200 or not ready:
                    return self
            except OSError:
                pass
            assert time.monotonic() < deadline, f"the gateway did not get ready:\n{self.log()}"
            time.sleep(0.1)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def post(self, path: str, doc, token: str | None = TOKEN, content_type: str = "application/json",
             method: str = "POST") -> tuple[int, dict[str, str], bytes]:
        body = doc if isinstance(doc, bytes) else orjson.dumps(doc)
        headers = {"Content-Type": content_type} if content_type else {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.request(method, path, body, headers)

    def metrics(self, token: str | None = None) -> dict[str, float]:
        status, _, body = self.request("GET", "/metrics", headers={"Authorization": f"Bearer {token}"} if token else {})
        assert status == 200, body
        return {name: float(value) for name, value in
                (line.rsplit(" ", 1) for line in body.decode().splitlines() if line and not line.startswith("#"))}

    def stop(self, timeout: float = 30) -> int | None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        return self.process.returncode if self.process else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Api(Gateway):
    """`xpbank api` (the read API alone, ready while Redis answers): the env's
    XPBANK_API_TOKENS token reads it."""

    COMMAND, PORT_VARIABLE = "api", "XPBANK_WEB_PORT"

    def __init__(self, env: dict[str, str], tmp: Path, name: str = "api", **extra: str) -> None:
        super().__init__(env, tmp, name, **extra)
        self.token = self.env["XPBANK_API_TOKENS"]

    def start(self, ready: bool = True) -> Api:
        """Its (empty) read models marked complete first (`read_models_built`)."""
        read_models_built(Settings.from_env(self.env))
        super().start(ready)
        return self


def read_models_built(settings: Settings) -> None:
    """Mark the (empty) read models under the settings' prefix complete, as a projector's
    rebuild leaves them: until then an API answers 503 (lost or never built)."""
    async def mark_complete() -> None:
        models = ReadModels.connect(settings)
        try:
            await models.begin_rebuild("tests", "a test's empty read models")
            await models.finish_rebuild("tests", (await models.status()).running)
        finally:
            await models.close()

    asyncio.run(mark_complete())


def records(settings: Settings, topic: str) -> list:
    """Every record of a registry topic: (key, value, timestamp ms, partition)."""
    async def collect():
        return [m async for m in read_topic(settings, settings.topic_prefix + topic)]
    return asyncio.run(collect())
