"""Secrets from the environment or files, masked everywhere; the API's bearer tokens."""

from __future__ import annotations

import pytest

from xpbank.config import ApiTokens, ConfigError, Secret, Settings
from xpbank.kafka.admin import connection_problem
from xpbank.kafka.connection import aiokafka_options, librdkafka_config
from xpbank.read.auth import authorize, bearer, scope_of

SASL = {"XPBANK_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "XPBANK_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "XPBANK_KAFKA_USERNAME": "xpbank"}


def test_secrets_come_from_files_and_never_show_in_a_repr(tmp_path):
    (tmp_path / "password").write_text("s3cret-pw\n")
    (tmp_path / "redis").write_text("rediss://default:r3dis-pw@127.0.0.1:6380/0\n")
    (tmp_path / "tokens").write_text("t0ken-a-0123456789abcdef0123456789,t0ken-b-0123456789abcdef0123456789")
    settings = Settings.from_env(SASL | {"XPBANK_KAFKA_PASSWORD_FILE": str(tmp_path / "password"),
                                         "XPBANK_REDIS_URL_FILE": str(tmp_path / "redis"),
                                         "XPBANK_API_TOKENS_FILE": str(tmp_path / "tokens")})
    assert settings.kafka.password.reveal() == "s3cret-pw"
    assert settings.redis_url == "rediss://default:r3dis-pw@127.0.0.1:6380/0"
    assert settings.redis_display == "rediss://default:***@127.0.0.1:6380/0"
    shown = repr(settings) + str(settings)
    for secret in ("s3cret-pw", "r3dis-pw", "t0ken-a", "t0ken-b"):
        assert secret not in shown
    assert aiokafka_options(settings)["sasl_plain_password"] == "s3cret-pw"
    assert librdkafka_config(settings)["sasl.password"] == "s3cret-pw"


@pytest.mark.parametrize(("env", "message"), [
    (SASL, "needs XPBANK_KAFKA_USERNAME and XPBANK_KAFKA_PASSWORD"),
    ({"XPBANK_KAFKA_SECURITY_PROTOCOL": "TLS"}, "XPBANK_KAFKA_SECURITY_PROTOCOL='TLS'"),
    ({"XPBANK_KAFKA_CA_FILE": "/nowhere/ca.pem", "XPBANK_KAFKA_SECURITY_PROTOCOL": "SSL"}, "not a readable file"),
    ({"XPBANK_KAFKA_PASSWORD": "x", "XPBANK_KAFKA_PASSWORD_FILE": "/tmp/x"}, "both set"),
    ({"XPBANK_KAFKA_PASSWORD_FILE": "/nowhere/pw"}, "XPBANK_KAFKA_PASSWORD_FILE='/nowhere/pw' cannot be read"),
    ({"XPBANK_REDIS_CA_FILE": __file__}, "needs a rediss://"),
    ({"XPBANK_API_TOKENS": '{"t": {"scopes": ["everything"]}}'}, "needs scopes among"),
])
def test_bad_security_settings_fail_naming_the_variable_and_never_the_secret(env, message):
    with pytest.raises(ConfigError, match=message) as raised:
        Settings.from_env(env)
    assert "s3cret" not in str(raised.value)


def test_tls_options_verify_the_brokers_against_the_ca(tmp_path):
    settings = Settings.from_env({"XPBANK_KAFKA_SECURITY_PROTOCOL": "SSL"})
    context = aiokafka_options(settings)["ssl_context"]
    assert context.check_hostname and context.verify_mode.name == "CERT_REQUIRED"
    assert librdkafka_config(settings) == {"bootstrap.servers": "127.0.0.1:9092", "security.protocol": "SSL"}
    assert "ssl_context" not in aiokafka_options(Settings.from_env({}))


def test_routes_need_their_scope_but_health_and_public_metrics():
    assert scope_of("/healthz", False) is None and scope_of("/metrics", True) is None
    assert scope_of("/metrics", False) == "operations"
    assert scope_of("/users/u1/xp", True) == "learners"


def test_tokens_grant_scopes_and_unknown_or_missing_tokens_are_refused():
    tokens = ApiTokens.parse('{"tok-ops-0123456789abcdef0123456789": {"name": "grafana", "scopes": ["operations"]}, "tok-all-0123456789abcdef0123456789": {"name": "web"}}')
    assert authorize(tokens, "tok-all-0123456789abcdef0123456789", "learners") == (200, "web")
    assert authorize(tokens, "tok-ops-0123456789abcdef0123456789", "operations") == (200, "grafana")
    assert authorize(tokens, "tok-ops-0123456789abcdef0123456789", "learners") == (403, "grafana")
    assert authorize(tokens, "tok-nope-0123456789abcdef0123456789", "learners") == (401, None)
    assert authorize(tokens, None, "learners") == (401, None)
    assert authorize(ApiTokens(), "anything", "learners") == (401, None)
    plain = ApiTokens.parse(f" {'a' * 32} , {'b' * 32} ")
    assert [name for _, name, _ in plain.scopes] == ["token-1", "token-2"]
    assert authorize(plain, "b" * 32, "operations")[0] == 200
    assert bearer("Bearer abc") == "abc" and bearer("bearer abc") == "abc" and bearer("Basic abc") is None
    assert bearer(None) is None and bearer("Bearer ") is None
    assert "tok-all-0123456789abcdef0123456789" not in repr(tokens) and Secret("x") != Secret("y")


@pytest.mark.parametrize(("text", "cause"), [
    ("sasl_ssl://127.0.0.1:9094/bootstrap: SASL authentication error: Authentication failed during authentication "
     "due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 329ms in state AUTH_REQ)", "authentication failed"),
    ("sasl_ssl://127.0.0.1:9094/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify "
     "failed: broker certificate could not be verified", "certificate is not trusted"),
    ("127.0.0.1:9094/bootstrap: Disconnected: connection closed by peer: receive 0 after POLLIN "
     "(after 0ms in state APIVERSION_QUERY)", "wrong protocol"),
    ("ssl://127.0.0.1:9092/bootstrap: SSL handshake failed: Disconnected: SSL connection closed by peer: connecting "
     "to a PLAINTEXT broker listener? (after 0ms in state SSL_HANDSHAKE)", "wrong protocol"),
    ("127.0.0.1:9999/bootstrap: Connect to ipv4#127.0.0.1:9999 failed: Connection refused", "no broker answers"),
    ("1/1 brokers are down", None),
])
def test_client_errors_are_named_in_an_operators_words(text, cause):
    problem = connection_problem(text)
    assert (problem is None) if cause is None else cause in problem
