"""Record lines sent over HTTP to `xpbank gateway` instead of Kafka (`xpbank demo
--via-gateway`): a Caliper event goes in an envelope of its own, a submission to
/v1/submissions, a mastery to /v1/masteries, a course to PUT /v1/courses/{id}."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from urllib.parse import quote

import aiohttp
import orjson

from xpbank.config import DEFAULTS
from xpbank.contract.times import format_time

CALIPER_V1P2 = "http://purl.imsglobal.org/ctx/caliper/v1p2"
DEMO_SENSOR = "https://demo.xpbank.example/sensor"


def default_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('XPBANK_GATEWAY_PORT') or DEFAULTS['XPBANK_GATEWAY_PORT']}"


def default_token() -> str | None:
    """The first of XPBANK_GATEWAY_TOKENS (they may send everything)."""
    tokens = [t.strip() for t in (os.environ.get("XPBANK_GATEWAY_TOKENS") or "").split(",") if t.strip()]
    return tokens[0] if tokens else None


def request_of(line: dict) -> tuple[str, str, bytes | None]:
    """(method, path, body) for a record line."""
    topic, value = line["topic"], line.get("value")
    if topic == "learning.caliper.v1":
        if "raw" in line:
            return "POST", "/caliper/v1p2", line["raw"].encode()
        envelope = {"sensor": DEMO_SENSOR, "sendTime": format_time(datetime.now(UTC)), "dataVersion": CALIPER_V1P2,
                    "data": value["data"] if isinstance(value, dict) and "data" in value else [value]}
        return "POST", "/caliper/v1p2", orjson.dumps(envelope)
    if topic == "learning.submissions.v1":
        return "POST", "/v1/submissions", orjson.dumps(value)
    if topic == "learning.mastery.v1":
        return "POST", "/v1/masteries", orjson.dumps(value)
    if topic == "learning.curriculum.v1":
        path = "/v1/courses/" + quote(line["key"], safe="")  # a course id may hold "/" or "%"
        return ("DELETE", path, None) if value is None else ("PUT", path, orjson.dumps(value))
    raise ValueError(f"the gateway does not take {topic}")


class GatewayClient:
    """One keep-alive session to a gateway."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url.rstrip("/"), token
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> GatewayClient:
        self.session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}"},
                                             timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.close()

    async def send(self, line: dict) -> tuple[int, str]:
        """(status, problem detail or "") for one record line."""
        method, path, body = request_of(line)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        async with self.session.request(method, self.url + path, data=body, headers=headers) as response:
            text = await response.read()
            detail = orjson.loads(text).get("detail", "") if response.status >= 400 and text else ""
            return response.status, detail
