"""Tokens (issue 21): every bearer token (API, web page, gateway) has at least 32
characters, or the service refuses to start naming the setting (never the token); a
secret read from a file that its group or others may read is warned about."""

from __future__ import annotations

import logging
import os

import orjson
import pytest

from tests.conftest import xpbank
from xpbank.config import MIN_TOKEN_LENGTH, ApiTokens, ConfigError, Settings
from xpbank.gateway.settings import GatewaySettings, parse_tokens

SHORT = "s" * (MIN_TOKEN_LENGTH - 1)
LONG = "l" * MIN_TOKEN_LENGTH


@pytest.mark.parametrize(("text", "name"), [
    (f"{LONG},{SHORT}", "XPBANK_API_TOKENS: token token-2"),
    (orjson.dumps({SHORT: {"name": "grafana", "scopes": ["operations"]}}).decode(), "XPBANK_API_TOKENS: token grafana"),
])
def test_a_short_api_token_is_refused_naming_the_setting_and_the_tokens_name(text, name):
    with pytest.raises(ConfigError, match=f"{name} is shorter than 32 characters") as raised:
        ApiTokens.parse(text)
    assert SHORT not in str(raised.value)
    assert len(ApiTokens.parse(LONG).scopes) == 1


def test_a_short_gateway_token_is_refused_naming_where_it_came_from():
    with pytest.raises(ConfigError, match="XPBANK_GATEWAY_TOKENS: gateway token token-1 is shorter"):
        parse_tokens(SHORT, None)
    file_text = orjson.dumps({SHORT: {"name": "reader", "may": ["caliper"]}}).decode()
    with pytest.raises(ConfigError, match="XPBANK_GATEWAY_TOKENS_FILE: gateway token reader is shorter") as raised:
        parse_tokens(LONG, file_text)
    assert SHORT not in str(raised.value)


@pytest.mark.parametrize(("command", "env", "setting"), [
    ("api", {"XPBANK_API_TOKENS": SHORT}, "XPBANK_API_TOKENS"),
    ("gateway", {"XPBANK_GATEWAY_TOKENS": SHORT}, "XPBANK_GATEWAY_TOKENS"),
    ("worker", {"XPBANK_API_TOKENS": f"{LONG},{SHORT}"}, "XPBANK_API_TOKENS"),
])
def test_the_services_refuse_to_start_with_a_short_token(command, env, setting):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("XPBANK_")}
    result = xpbank(clean | env, command, timeout=60)
    assert result.returncode == 2 and setting.encode() in result.stderr and b"shorter than 32" in result.stderr
    assert SHORT.encode() not in result.stderr + result.stdout and b"Traceback" not in result.stderr


def test_a_secret_file_others_may_read_is_warned_about_once(tmp_path, caplog):
    tokens = tmp_path / "api-tokens"
    tokens.write_text(LONG)
    tokens.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="xpbank.config"):
        Settings.from_env({"XPBANK_API_TOKENS_FILE": str(tokens)})
        Settings.from_env({"XPBANK_API_TOKENS_FILE": str(tokens)})
    [warning] = [r.getMessage() for r in caplog.records]
    assert "XPBANK_API_TOKENS_FILE" in warning and "group or others (mode 0o644)" in warning and LONG not in warning
    private = tmp_path / "private"
    private.write_text(orjson.dumps({LONG: {"may": ["caliper"]}}).decode())
    private.chmod(0o600)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="xpbank.config"):
        GatewaySettings.from_env({"XPBANK_GATEWAY_TOKENS_FILE": str(private)})
    assert caplog.records == []
    private.chmod(0o640)
    with caplog.at_level(logging.WARNING, logger="xpbank.config"):
        GatewaySettings.from_env({"XPBANK_GATEWAY_TOKENS_FILE": str(private)})
    assert "XPBANK_GATEWAY_TOKENS_FILE" in caplog.records[0].getMessage()
