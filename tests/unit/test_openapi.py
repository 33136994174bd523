"""Each server's OpenAPI 3.1 description (/openapi.json) names exactly the routes it has,
and is a valid OpenAPI 3.1 document (the live servers are fuzzed against them:
tests/integration/test_fuzz.py)."""

from __future__ import annotations

import pytest
import schemathesis

from xpbank.config import Settings
from xpbank.gateway.app import create_app
from xpbank.gateway.openapi import DESCRIPTION as GATEWAY
from xpbank.gateway.settings import GatewaySettings
from xpbank.read.openapi import DESCRIPTION as API
from xpbank.read.server import Host, build
from xpbank.web.openapi import paths_of, routes_of

TOKEN = "t" * 32


async def _health() -> tuple[int, dict]:
    return 200, {"ready": True}


async def _metrics() -> str:
    return ""


def apps() -> dict:
    return {"gateway": (create_app(GatewaySettings.from_env({"XPBANK_GATEWAY_TOKENS": TOKEN})), GATEWAY),
            "api": (build(Settings.from_env({"XPBANK_API_TOKENS": TOKEN}), Host(_health, _metrics)), API)}


@pytest.mark.parametrize("name", ["gateway", "api"])
def test_the_description_names_every_route_and_no_other(name):
    app, description = apps()[name]
    assert paths_of(description) == routes_of(app)
    assert description["openapi"] == "3.1.0"


@pytest.mark.parametrize("name", ["gateway", "api"])
def test_the_description_is_valid_openapi_with_every_reference_resolved(name):
    _, description = apps()[name]
    schema = schemathesis.openapi.from_dict(description)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(paths_of(description))
