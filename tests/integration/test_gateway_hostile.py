"""A hostile or broken client against a real `xpbank gateway` and the real broker: every
class of bad input is a 4xx problem document and sends nothing (SPEC §2.5 limits, huge
envelopes, deep or non-UTF-8 JSON, wrong content types, broken chunked bodies, bytes no
header should hold, guessed tokens), the bytes one request writes stay within twice its
body plus 64 KiB, and per-token rates answer 429 with Retry-After."""

from __future__ import annotations

import asyncio
import socket
import uuid

import orjson
import pytest

from tests.builders import mastery, submission
from tests.caliper_fixtures import envelope, timeback_time_spent
from tests.conftest import drop_redis_keys, make_env
from tests.gateway_proc import TOKEN, Gateway, records
from xpbank.config import Settings
from xpbank.contract.topics import registry_setups
from xpbank.gateway import caliper
from xpbank.kafka.admin import converge

pytestmark = pytest.mark.integration

LONG = "x" * 513
CALIPER = "learning.caliper.v1"


@pytest.fixture(scope="module")
def module_env(broker, redis_url, tmp_path_factory):
    environment, tag = make_env(broker, redis_url, tmp_path_factory.mktemp("hostile"))
    settings = Settings.from_env(environment)
    asyncio.run(converge(settings, registry_setups(settings.topic_prefix, settings.partitions, 1, -1)))
    yield environment
    drop_redis_keys(redis_url, tag)


@pytest.fixture(scope="module")
def settings(module_env) -> Settings:
    return Settings.from_env(module_env)


@pytest.fixture(scope="module")
def gateway(module_env, tmp_path_factory):
    gateway = Gateway(module_env, tmp_path_factory.mktemp("hostile-run"), XPBANK_METRICS_PUBLIC="1",
                      XPBANK_HTTP_HEADER_TIMEOUT_SECONDS="2").start()
    yield gateway
    gateway.stop()
    assert "Traceback" not in gateway.log()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def problem(response, status: int, says: str) -> None:
    got, headers, body = response
    assert got == status, (status, says, response)
    assert headers["content-type"] == "application/problem+json" and says in orjson.loads(body)["detail"], body


def arrived(settings: Settings, topic: str, marker: str) -> list:
    return [m for m in records(settings, topic) if marker.encode() in (m.key or b"") + (m.value or b"")]


def raw(port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """A request as bytes (headers no HTTP library would send); its status and answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"\r\n" + body)
        got = b""
        while b"\r\n\r\n" not in got and (chunk := sock.recv(65536)):
            got += chunk
    return int(got.split(b" ", 2)[1]), got


# ---- SPEC §2.5 limits and huge envelopes ------------------------------------------------


def test_an_id_over_the_limit_is_a_422_naming_the_field_and_limit_and_sends_nothing(gateway, settings):
    marker = unique("limits")
    good = timeback_time_spent(marker)
    cases = [
        (envelope([good, timeback_time_spent(marker) | {"actor": {"id": "https://r.example/users/" + LONG}}]),
         "data[1].actor.id: longer than XPBANK_MAX_ID_LENGTH=512"),
        (envelope([good | {"object": good["object"] | {"course": {"id": "c\x01"}}}]), "data[0].object.course.id: holds a control"),
        (envelope([good], sensor="https://s.example/" + marker + LONG), "sensor: longer than XPBANK_MAX_ID_LENGTH=512"),
    ]
    for doc, says in cases:
        problem(gateway.post("/caliper/v1p2", doc), 422, says)
    sub = submission("AttemptStarted", marker + LONG, "ex1", 0)["value"]
    problem(gateway.post("/v1/submissions", sub), 422, "userSourcedId: longer than XPBANK_MAX_ID_LENGTH=512")
    won = mastery(marker, "ex\x7f", 0)["value"]
    problem(gateway.post("/v1/masteries", won), 422, "exerciseSourcedId: holds a control character")
    course = "c" * 513
    problem(gateway.post(f"/v1/courses/{course}", {"type": "CourseUpserted", "courseSourcedId": course}, method="PUT"),
            422, "courseSourcedId: longer than")
    problem(gateway.request("DELETE", f"/v1/courses/{course}", headers={"Authorization": f"Bearer {TOKEN}"}),
            422, "courseSourcedId (the path): longer than")
    for topic in (CALIPER, "learning.submissions.v1", "learning.mastery.v1"):
        assert arrived(settings, topic, marker) == []


def test_huge_envelopes_and_arrays_are_refused_413_naming_the_limit(gateway, settings):
    marker = unique("huge")
    events = [timeback_time_spent(marker, t=-n) for n in range(1, 1002)]
    slim = [{"id": e["id"], "actor": e["actor"]} for e in events]  # within the payload limit
    problem(gateway.post("/caliper/v1p2", envelope(slim)), 413, "over XPBANK_MAX_EVENTS_PER_ENVELOPE=1000")
    subs = [submission("AttemptStarted", marker, "ex1", n)["value"] for n in range(1001)]
    subs = [{k: s[k] for k in ("id", "type")} for s in subs]
    problem(gateway.post("/v1/submissions", subs), 413, "over XPBANK_MAX_EVENTS_PER_ENVELOPE=1000")
    assert arrived(settings, CALIPER, marker) == []


def test_the_bytes_written_for_a_request_stay_within_twice_its_body_plus_64_kib(gateway, settings):
    """The issue's amplification (an envelope of many events without a learner and a long
    sensor, each becoming a record that repeats the envelope's head) is refused 413 naming
    the bound; what is accepted, whatever its shape, writes at most the bound."""
    marker = unique("amp")
    sensor = f"https://sensor.example/{marker}/" + "s" * 440
    problem(gateway.post("/caliper/v1p2", envelope([{}] * 1000, sensor=sensor)), 413, "over twice its body plus 64 KiB")
    problem(gateway.post("/caliper/v1p2", envelope([{"n": n} for n in range(900)], sensor=sensor)), 413, "64 KiB")
    assert arrived(settings, CALIPER, marker) == []
    shapes = {
        "one learner": envelope([timeback_time_spent(f"{marker}-a", t=-n) for n in range(1, 200)]),
        "many learners": envelope([timeback_time_spent(f"{marker}-{n}") for n in range(250)], sensor=sensor),
        "loose within the bound": envelope([{"n": n} for n in range(60)], sensor=sensor),
        "mixed": envelope([timeback_time_spent(f"{marker}-b"), {"id": marker}] * 100, sensor=sensor),
    }
    for name, doc in shapes.items():
        body = orjson.dumps(doc)
        before = {(m.partition, m.offset) for m in records(settings, CALIPER)}
        assert gateway.post("/caliper/v1p2", body)[0] == 200, name
        written = [m for m in records(settings, CALIPER) if (m.partition, m.offset) not in before]
        size = sum(len(m.key) + len(m.value) for m in written)
        assert written and size <= caliper.bound(len(body)), (name, size, len(body))


# ---- malformed bodies and headers ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/caliper/v1p2", "/v1/submissions"])
def test_deep_or_non_utf8_json_and_wrong_content_types_are_refused(gateway, path):
    deep = b"[" * 5000 + b"]" * 5000
    problem(gateway.post(path, deep), 400, "malformed JSON")
    problem(gateway.post(path, b'{"sensor": "\xff\xfe"}'), 400, "malformed JSON")
    problem(gateway.post(path, b"{}", content_type="application/xml"), 415, "send application/json")
    problem(gateway.post(path, b"[", content_type="application/json; charset=\xff"), 400, "malformed JSON")


def test_bytes_no_header_should_hold_are_refused_never_a_500(gateway):
    port = gateway.port
    auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
    body = orjson.dumps(envelope([timeback_time_spent(unique("bytes"))]))
    length = b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    cases = [
        (b"POST /caliper/v1p2 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\xfd\r\n" + length, body, 401),
        (b"POST /caliper/v1p2 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \x01\x02\r\n" + length, body, 400),  # parser
        (b"POST /caliper/v1p2 HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Type: \xff/\xfe\r\nContent-Length: 2\r\n",
         b"{}", 415),
        (b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xc3\x28\r\n", b"", 200),  # public here
        (b"GET /healthz HTTP/1.1\r\nHost: \xff\r\nCookie: \xff=\xfe; a\r\n", b"", 200),
        (b"POST /caliper/v1p2 HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Type: application/json\r\n"
         b"Content-Length: 2\r\nContent-Length: 3\r\n", b"{}", 400),
        (b"GET /caliper/\xff\xfe HTTP/1.1\r\nHost: x\r\n", b"", 400),  # the parser
    ]
    for head, payload, status in cases:
        got, answer = raw(port, head, payload)
        assert got == status, (head, answer[:300])
    assert "Traceback" not in gateway.log()


def test_guessed_tokens_are_401_counted_and_never_anything_else(gateway):
    before = gateway.metrics()["xpbank_gateway_auth_failures_total"]
    guesses = [TOKEN[:-1], TOKEN + "x", TOKEN.upper(), TOKEN[::-1]] + [uuid.uuid4().hex for _ in range(196)]
    doc = orjson.dumps(envelope([timeback_time_spent("guess")]))
    statuses = {gateway.post("/caliper/v1p2", doc, token=guess)[0] for guess in guesses}
    assert statuses == {401}
    assert gateway.metrics()["xpbank_gateway_auth_failures_total"] - before == len(guesses)


# ---- rates ----------------------------------------------------------------------------


def test_a_token_past_its_rates_or_uploads_is_answered_429_with_retry_after_and_counted(module_env, tmp_path):
    tokens = {name: f"{name}-token-{uuid.uuid4().hex}" for name in ("fast", "heavy", "calm")}
    path = tmp_path / "tokens.json"
    path.write_text(orjson.dumps({t: {"name": n, "may": ["caliper"]} for n, t in tokens.items()}).decode())
    path.chmod(0o600)
    gateway = Gateway(module_env, tmp_path, XPBANK_GATEWAY_TOKENS_FILE=str(path), XPBANK_METRICS_PUBLIC="1",
                      XPBANK_GATEWAY_TOKEN_REQUESTS_PER_SECOND="5", XPBANK_MAX_PAYLOAD_BYTES="100000",
                      XPBANK_GATEWAY_TOKEN_BYTES_PER_SECOND="100000").start()
    try:
        small = orjson.dumps(envelope([timeback_time_spent(unique("rate"))]))
        fast = [gateway.post("/caliper/v1p2", small, token=tokens["fast"]) for _ in range(12)]
        assert {r[0] for r in fast} == {200, 429}
        limited = next(r for r in fast if r[0] == 429)
        problem(limited, 429, "XPBANK_GATEWAY_TOKEN_REQUESTS_PER_SECOND=5")
        assert int(limited[1]["retry-after"]) >= 1
        assert gateway.post("/caliper/v1p2", small, token=tokens["calm"])[0] == 200  # another token: its own
        big = orjson.dumps(envelope([timeback_time_spent(unique("bytes"), t=-n) for n in range(1, 60)]))
        heavy = [gateway.post("/caliper/v1p2", big, token=tokens["heavy"])[0] for _ in range(4)]
        assert heavy[0] == 200 and 429 in heavy
        counted = gateway.metrics()
        assert counted['xpbank_gateway_rate_limited_total{limit="requests"}'] >= 1
        assert counted['xpbank_gateway_rate_limited_total{limit="bytes"}'] >= 1
    finally:
        gateway.stop()
