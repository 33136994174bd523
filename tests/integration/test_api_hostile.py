"""A hostile or broken client against a real `xpbank api` (the read API and the web page,
on the real Redis): bytes no header or cookie should hold are a 401 (or the login form),
never a 500; guessed tokens are 401 and counted; bodies are held to the form's limit; the
live page's event streams are capped."""

from __future__ import annotations

import http.client
import socket
import uuid

import orjson
import pytest

from tests.conftest import drop_redis_keys, make_env
from tests.gateway_proc import Api

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(broker, redis_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("api-hostile")
    env, tag = make_env(broker, redis_url, tmp)
    api = Api(env, tmp, XPBANK_UI_MAX_STREAMS="2").start()
    yield api
    api.stop()
    drop_redis_keys(redis_url, tag)
    assert "Traceback" not in api.log()


def raw(port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"\r\n" + body)
        got = b""
        while b"\r\n\r\n" not in got and (chunk := sock.recv(65536)):
            got += chunk
    return int(got.split(b" ", 2)[1]), got


def test_bytes_no_header_or_cookie_should_hold_are_refused_never_a_500(api):
    form = b"token=%FF%FE&next=/ui/"
    cases = [
        (b"GET /users/u1/xp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\xfd\r\n", b"", 401),
        (b"GET /users/u1/xp HTTP/1.1\r\nHost: x\r\nAuthorization: \xc3\x28 \xc3\x28\r\n", b"", 401),
        (b"GET /users/u1/xp HTTP/1.1\r\nHost: x\r\nCookie: xpbank_token=\xff\xfe\r\n", b"", 401),
        (b"GET /users/u1/xp HTTP/1.1\r\nHost: x\r\nCookie: \xff=\xfe; ;;==; xpbank_token\r\n", b"", 401),
        (b"GET /ui/api/overview HTTP/1.1\r\nHost: x\r\nCookie: xpbank_token=\"\\\xff\r\n", b"", 401),
        (b"GET /ui/ HTTP/1.1\r\nHost: x\r\nCookie: xpbank_token=\xff\xfe\r\n", b"", 303),  # to the login form
        (b"GET /ui/learners/u1?token=%FF%FE HTTP/1.1\r\nHost: x\r\n", b"", 303),
        (b"GET /ui/learners/%ff%fe HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: \xff\r\n", b"", 303),
        (b"POST /ui/login HTTP/1.1\r\nHost: x\r\nOrigin: http://[::1\r\nContent-Length: %d\r\n" % len(form), form, 403),
        (b"POST /ui/login HTTP/1.1\r\nHost: x\r\nOrigin: \xff\r\nSec-Fetch-Site: \xfe\r\nContent-Length: %d\r\n"
         % len(form), form, 403),
        (b"POST /ui/login HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n", b"\xff\xfe=\x00&", 303),
        (b"GET /ui/%0D%0ALocation:%20x?token=t HTTP/1.1\r\nHost: x\r\n", b"", 303),
        (b"GET /healthz HTTP/1.1\r\nHost: \xff\r\n", b"", 200),
    ]
    for head, body, status in cases:
        got, answer = raw(api.port, head, body)
        assert got == status, (head, answer[:400])
        assert b"\r\nLocation: x" not in answer  # no header injected from a path
    assert "Traceback" not in api.log()


def test_guessed_tokens_are_401_and_counted(api):
    guesses = [api.token[:-1], api.token + "x", api.token.upper()] + [f"tok-{uuid.uuid4().hex}" for _ in range(97)]
    for guess in guesses:
        assert api.request("GET", "/users/u1/xp", headers={"Authorization": f"Bearer {guess}"})[0] == 401
    status, _, body = api.request("GET", "/metrics", headers={"Authorization": f"Bearer {api.token}"})
    counted = dict(line.rsplit(" ", 1) for line in body.decode().splitlines() if not line.startswith("#"))
    assert status == 200 and float(counted['xpbank_api_requests_total{route="/users/{user}/xp",status="401"}']) >= 100


def test_a_login_form_past_its_limit_is_413_and_the_event_streams_are_capped(api):
    big = b"token=" + b"x" * 20_000
    status, _, body = api.request("POST", "/ui/login", big, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 413 and "over the login form's limit=16384" in orjson.loads(body)["detail"]
    streams = []
    try:
        for _ in range(2):  # XPBANK_UI_MAX_STREAMS=2
            connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=30)
            connection.request("GET", "/ui/api/events", headers={"Authorization": f"Bearer {api.token}"})
            response = connection.getresponse()
            assert response.status == 200 and response.readline() == b"retry: 3000\n"
            streams.append(connection)
        status, headers, body = api.request("GET", "/ui/api/events", headers={"Authorization": f"Bearer {api.token}"})
        assert status == 503 and headers["retry-after"] == "10" and "XPBANK_UI_MAX_STREAMS" in orjson.loads(body)["detail"]
    finally:
        for connection in streams:
            connection.close()
