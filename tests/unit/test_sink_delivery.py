"""How the sinks deliver (SPEC §3.7), without a server: which answers are retried, how
long they wait (Retry-After honoured, exponential backoff), the pace, when an OAuth2
token is fetched again, how the Caliper store is read back, the settings refused at
start, and the sinks' own /healthz and /metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from xpbank.config import ConfigError, Secret, Settings
from xpbank.sinks.analytics import Sent
from xpbank.sinks.auth import refresh_at
from xpbank.sinks.http import Pace
from xpbank.sinks.metrics import Health, SinkMetrics
from xpbank.sinks.retry import OK, REAUTH, REFUSED, RETRY, backoff, classify, retry_after, wait_before_retry
from xpbank.sinks.sent import Held, Pending, fold, held_of, record_key, record_value
from xpbank.sinks.server import build
from xpbank.sinks.settings import CaliperSettings, Credentials, OneRosterSettings

NOW = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("status", "kind"), [
    (200, OK), (201, OK), (204, OK), (None, RETRY), (408, RETRY), (429, RETRY), (500, RETRY), (502, RETRY),
    (503, RETRY), (504, RETRY), (401, REAUTH), (400, REFUSED), (403, REFUSED), (404, REFUSED), (409, REFUSED),
    (413, REFUSED), (422, REFUSED), (301, RETRY), (307, RETRY),
])
def test_what_may_succeed_later_is_retried_and_other_4xx_refused_for_good(status, kind):
    assert classify(status) == kind


def test_retry_after_in_seconds_or_as_a_date():
    assert retry_after("7", NOW) == 7.0
    assert retry_after(" 0 ", NOW) == 0.0
    assert retry_after(format_datetime(NOW + timedelta(seconds=90), usegmt=True), NOW) == 90.0
    assert retry_after(format_datetime(NOW - timedelta(seconds=90), usegmt=True), NOW) == 0.0  # past: at once
    assert retry_after("86400", NOW) == 3600.0  # capped at an hour
    assert retry_after(None, NOW) is None and retry_after("", NOW) is None
    assert retry_after("soon", NOW) is None and retry_after("-5", NOW) is None


def test_backoff_doubles_up_to_the_cap_with_jitter_in_its_upper_half():
    assert [backoff(n, 60, 0.0) for n in (1, 2, 3, 4)] == [0.125, 0.25, 0.5, 1.0]
    assert [backoff(n, 60, 0.999999) for n in (1, 2)] == pytest.approx([0.25, 0.5])
    assert backoff(30, 60, 0.0) == 30.0 and backoff(30, 60, 0.999999) == pytest.approx(60.0)
    assert wait_before_retry(5, 60, 0.5, asked=12.0) == 12.0  # the server's Retry-After wins
    assert wait_before_retry(1, 60, 0.0, asked=None) == 0.125


def test_the_pace_spaces_requests_evenly():
    now = [100.0]
    pace = Pace(4.0, clock=lambda: now[0])
    assert [pace.reserve() for _ in range(3)] == [0.0, 0.25, 0.5]
    now[0] = 110.0
    assert pace.reserve() == 0.0
    assert Pace(0.0).reserve() == 0.0  # no limit


def test_an_oauth2_token_is_fetched_again_before_it_expires():
    assert refresh_at(1000.0, 3600.0) == 1000.0 + 3600.0 - 720.0  # at 80 %
    assert refresh_at(1000.0, 120.0) == 1000.0 + 90.0  # at least 30 s before
    assert refresh_at(1000.0, 5.0) == 1004.0  # a short-lived one: at 80 %


def test_the_store_is_read_back_as_each_facts_greatest_revision_with_the_events_not_settled():
    live: dict[str, dict] = {}
    one, two = {"id": "urn:uuid:e1"}, {"id": "urn:uuid:e2"}
    records = [
        (record_key("f1", 1, 1), record_value("f1", Sent(1, 1, 3), None)),  # settled
        (record_key("f1", 1, 2), record_value("f1", Sent(1, 2, 5), one, (2, 40))),  # written ahead
        (record_key("f1", 1, 3), record_value("f1", Sent(1, 3, 6), two, (2, 41))),  # written ahead
        (record_key("f2", 2, 1), record_value("f2", Sent(2, 1, 4), None)),
        (record_key("f2", 1, 7), record_value("f2", Sent(1, 7, 9), {"id": "late"})),  # an older generation, late
        (record_key("f3", 1, 1), record_value("f3", Sent(1, 1, 2), None)),
        (record_key("f3", 1, 1), None),  # deleted
    ]
    for key, value in records:
        fold(live, key, value)
    held = {fact_id: held_of(found) for fact_id, found in live.items() if found}
    assert held["f1"] == Held(Sent(1, 3, 6), record_key("f1", 1, 3),
                              (Pending(one, (2, 40)), Pending(two, (2, 41))), (record_key("f1", 1, 1), record_key("f1", 1, 2)))
    assert held["f2"].sent == Sent(2, 1, 4) and held["f2"].pending == ()  # settled after it: not sent again
    assert set(held) == {"f1", "f2"}
    assert record_key("bank:u%3A1:v1", 2, 3) == b"bank:u%3A1:v1\x1f2.3"


SINK_ENV = {"XPBANK_ONEROSTER_URL": "https://roster.example.org", "XPBANK_ONEROSTER_TOKEN": "t-or",
            "XPBANK_CALIPER_SINK_URL": "https://caliper.example.org/caliper/event", "XPBANK_CALIPER_SINK_TOKEN": "t-ca"}


def test_sink_settings_need_a_url_and_credentials_and_default_the_actor_to_the_roster():
    caliper = CaliperSettings.from_env(SINK_ENV)
    assert caliper.identity.actor_id("u1") == "https://roster.example.org/ims/oneroster/rostering/v1p2/users/u1"
    assert caliper.batch_size == 100 and caliper.port == 6072
    assert OneRosterSettings.from_env(SINK_ENV).kinds == {"banked"}
    for missing, variable in (("XPBANK_ONEROSTER_URL", "XPBANK_ONEROSTER_URL"),
                              ("XPBANK_ONEROSTER_TOKEN", "XPBANK_ONEROSTER_TOKEN")):
        with pytest.raises(ConfigError, match=variable):
            OneRosterSettings.from_env({k: v for k, v in SINK_ENV.items() if k != missing})
    with pytest.raises(ConfigError, match="XPBANK_CALIPER_ACTOR_ID"):
        CaliperSettings.from_env({k: v for k, v in SINK_ENV.items() if k != "XPBANK_ONEROSTER_URL"})
    with pytest.raises(ConfigError, match="XPBANK_ONEROSTER_URL"):
        OneRosterSettings.from_env(SINK_ENV | {"XPBANK_ONEROSTER_URL": "roster.example.org"})


def test_credentials_are_a_token_or_complete_client_credentials_read_from_files_too(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    found = Credentials.from_env({"XPBANK_ONEROSTER_TOKEN_URL": "https://auth.example.org/oauth2/token",
                                  "XPBANK_ONEROSTER_CLIENT_ID": "cid",
                                  "XPBANK_ONEROSTER_CLIENT_SECRET_FILE": str(secret)}, "XPBANK_ONEROSTER")
    assert found.oauth2 and found.client_secret.reveal() == "s3cret" and "s3cret" not in repr(found)
    with pytest.raises(ConfigError, match="XPBANK_ONEROSTER_CLIENT_SECRET"):
        Credentials.from_env({"XPBANK_ONEROSTER_TOKEN_URL": "https://auth.example.org/t",
                              "XPBANK_ONEROSTER_CLIENT_ID": "cid"}, "XPBANK_ONEROSTER")
    with pytest.raises(ConfigError, match="both set"):
        Credentials.from_env({"XPBANK_ONEROSTER_TOKEN": "t", "XPBANK_ONEROSTER_TOKEN_URL": "https://a.example/t",
                              "XPBANK_ONEROSTER_CLIENT_ID": "c", "XPBANK_ONEROSTER_CLIENT_SECRET": "s"}, "XPBANK_ONEROSTER")
    assert "zq-9" not in repr(Credentials(token=Secret("zq-9")))


def test_metrics_carry_the_contracts_names_and_no_learner():
    metrics = SinkMetrics("caliper")
    metrics.requests.update({"200": 3, "503": 2, "error": 1})
    metrics.lag, metrics.written, metrics.retries, metrics.dead_letters = {0: 4, 1: 0}, 7, 3, 1
    text = metrics.render(Health())
    for sample in ('xpbank_sink_lag{sink="caliper",partition="0"} 4', 'xpbank_sink_requests_total{sink="caliper",status="503"} 2',
                   'xpbank_sink_written_total{sink="caliper"} 7', 'xpbank_sink_dead_letters_total{sink="caliper"} 1',
                   'xpbank_sink_retries_total{sink="caliper"} 3', 'xpbank_sink_broker_up{sink="caliper"} 0'):
        assert sample in text


async def test_healthz_is_open_and_says_what_fails_metrics_needs_an_operations_token():
    ops, web_app = "t-ops-" + "o" * 32, "t-web-" + "w" * 32
    settings = Settings.from_env({"XPBANK_API_TOKENS": f'{{"{ops}": {{"scopes": ["operations"]}}, '
                                                       f'"{web_app}": {{"scopes": ["learners"]}}}}'})
    health = Health()
    async with TestClient(TestServer(build(settings, SinkMetrics("oneroster"), health))) as client:
        response = await client.get("/healthz")
        assert response.status == 503 and (await response.json())["brokerProblem"] == "starting"
        health.broker_answered()
        assert (await client.get("/healthz")).status == 200
        health.server_failed("answered 503")
        body = orjson.loads(await (await client.get("/healthz")).read())
        assert body["ready"] is False and body["server"] is False and body["serverProblem"] == "answered 503"
        assert (await client.get("/metrics")).status == 401
        assert (await client.get("/metrics", headers={"Authorization": f"Bearer {web_app}"})).status == 401
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {ops}"})
        assert response.status == 200 and 'xpbank_sink_server_up{sink="oneroster"} 0' in await response.text()
        missing = await client.get("/nowhere")
        assert missing.status == 404 and missing.content_type == "application/problem+json"


async def test_a_token_is_fetched_once_shared_fetched_again_before_expiry_and_after_a_401():
    from aiohttp import ClientSession, web

    from xpbank.sinks.auth import TokenSource, TokenUnavailable

    issued = []

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        if (form["grant_type"], form["client_id"], form["client_secret"]) != ("client_credentials", "cid", "sec"):
            return web.json_response({"error": "invalid_client"}, status=401)
        issued.append(f"tok-{len(issued) + 1}")
        return web.json_response({"access_token": issued[-1], "expires_in": 100})

    app = web.Application()
    app.router.add_post("/oauth2/token", token)
    async with TestServer(app) as server, ClientSession() as session:
        now = [0.0]
        url = str(server.make_url("/oauth2/token"))
        source = TokenSource(Credentials(token_url=url, client_id=Secret("cid"), client_secret=Secret("sec")),
                             lambda: session, clock=lambda: now[0])
        import asyncio

        assert await asyncio.gather(*(source.header() for _ in range(5))) == ["Bearer tok-1"] * 5  # one fetch
        now[0] = 69.0
        assert await source.header() == "Bearer tok-1"
        now[0] = 70.0  # 100 s tokens are fetched again 30 s before they expire
        assert await source.header() == "Bearer tok-2"
        source.refused("Bearer tok-1")  # a 401 to a request with an older token: tok-2 stays
        assert await source.header() == "Bearer tok-2"
        source.refused("Bearer tok-2")
        assert await source.header() == "Bearer tok-3" and issued == ["tok-1", "tok-2", "tok-3"]
        wrong = TokenSource(Credentials(token_url=url, client_id=Secret("cid"), client_secret=Secret("nope")),
                            lambda: session)
        with pytest.raises(TokenUnavailable, match="answered 401") as refused:
            await wrong.header()
        assert "nope" not in str(refused.value)
    fixed = TokenSource(Credentials(token=Secret("fixed")), lambda: None)
    assert await fixed.header() == "Bearer fixed"
    fixed.refused("Bearer fixed")
    assert await fixed.header() == "Bearer fixed"


def test_the_sink_command_refuses_templates_that_would_merge_results_before_it_starts(monkeypatch, capsys):
    from xpbank.cli.main import main

    for name in list(__import__("os").environ):
        if name.startswith("XPBANK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XPBANK_ONEROSTER_URL", "https://roster.example.org")
    monkeypatch.setenv("XPBANK_ONEROSTER_TOKEN", "t")
    monkeypatch.setenv("XPBANK_ONEROSTER_RESULT_ID", "nice_{lineItem}")  # every learner's result would be one
    assert main(["sink", "oneroster"]) == 2
    assert "XPBANK_ONEROSTER_RESULT_ID='nice_{lineItem}' does not name {user}" in capsys.readouterr().err
    monkeypatch.delenv("XPBANK_ONEROSTER_RESULT_ID")
    monkeypatch.setenv("XPBANK_CALIPER_SINK_URL", "https://caliper.example.org/caliper/event")
    monkeypatch.setenv("XPBANK_CALIPER_SINK_TOKEN", "t")
    monkeypatch.setenv("XPBANK_CALIPER_ACTOR_ID", "https://roster.example.org/users/{user}/xp")
    assert main(["sink", "caliper"]) == 2
    assert "XPBANK_CALIPER_ACTOR_ID" in capsys.readouterr().err
