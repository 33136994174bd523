"""Schemathesis (pinned in pyproject.toml) against both live servers, a real `xpbank
gateway` on the real broker and a real `xpbank api` on the real Redis, from the
descriptions they serve at /openapi.json: a fixed number of generated requests per
operation (valid and invalid ones), and no answer may be a 5xx or differ from the
description (status, content type, headers, body schema)."""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_headers_conformance, response_schema_conformance, status_code_conformance,
)

from tests.conftest import drop_redis_keys, make_env
from tests.gateway_proc import TOKEN, Api, Gateway
from xpbank.config import Settings
from xpbank.contract.topics import registry_setups
from xpbank.kafka.admin import converge

pytestmark = pytest.mark.integration

EXAMPLES = 20  # per operation: the run stays well under a minute on a loaded machine
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
ENDLESS = "/ui/api/events"  # a server-sent event stream never ends: tested by the browser tests instead


@pytest.fixture(scope="module")
def served(broker, redis_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    env, tag = make_env(broker, redis_url, tmp)
    config = Settings.from_env(env)
    asyncio.run(converge(config, registry_setups(config.topic_prefix, config.partitions, 1, -1)))
    gateway = Gateway(env, tmp, XPBANK_METRICS_PUBLIC="1").start()
    api = Api(env, tmp).start()
    yield {"gateway": (gateway, TOKEN), "api": (api, api.token)}
    gateway.stop()
    api.stop()
    drop_redis_keys(redis_url, tag)
    for server in (gateway, api):
        assert "Traceback" not in server.log(), server.log()[-3000:]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("name", ["gateway", "api"])
def test_no_answer_is_a_5xx_or_differs_from_the_description(served, name, mode):
    server, token = served[name]
    base = f"http://127.0.0.1:{server.port}"
    described = schemathesis.openapi.from_url(base + "/openapi.json")
    operations = [result.ok() for result in described.get_all_operations()]
    assert len(operations) > 5
    ran: list[str] = []
    for operation in operations:
        if operation.path == ENDLESS:
            continue

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def answers_as_described(case) -> None:
            case.call_and_validate(base_url=base, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS,
                                   allow_redirects=False, timeout=30)

        try:
            answers_as_described()
            ran.append(operation.label)
        except Unsatisfiable:  # no input of it can be invalid (no parameters; a form of strings): positive only
            assert mode == GenerationMode.NEGATIVE, operation.label
    assert len(ran) >= len(operations) // 2, ran
