"""`xpbank gateway` against the real broker: what it accepts arrives as records (keyed,
partitioned and timestamped as the workers expect), every refusal is its status with a
problem document and sends nothing, and the buffer, the broker's absence and a shutdown
behave as documented."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from tests.builders import mastery, submission
from tests.caliper_fixtures import SENSOR, envelope, ims_examples, timeback_examples, timeback_time_spent
from tests.conftest import drop_redis_keys, make_env
from tests.gateway_proc import TOKEN, Gateway, free_port, records
from xpbank.config import Settings
from xpbank.contract.topics import registry_setups
from xpbank.gateway import caliper
from xpbank.kafka.admin import converge

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SENSOR_TOKEN, CURRICULUM_TOKEN, OPERATOR_TOKEN = "test-token-sensor-0123456789abcdef0123456789", "test-token-curriculum-0123456789abcdef0123456789", "test-token-ops-0123456789abcdef0123456789"


@pytest.fixture(scope="module")
def module_env(broker, redis_url, tmp_path_factory):
    environment, tag = make_env(broker, redis_url, tmp_path_factory.mktemp("gateway"))
    yield environment
    drop_redis_keys(redis_url, tag)


@pytest.fixture(scope="module")
def settings(module_env) -> Settings:
    settings = Settings.from_env(module_env)
    asyncio.run(converge(settings, registry_setups(settings.topic_prefix, settings.partitions, 1, -1)))
    return settings


@pytest.fixture(scope="module")
def gateway(module_env, settings, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gateway-run")
    tokens = tmp / "tokens.json"
    tokens.write_text(orjson.dumps({
        SENSOR_TOKEN: {"name": "reading-app", "may": ["caliper"], "sensor": SENSOR},
        CURRICULUM_TOKEN: {"name": "authoring", "may": ["curriculum"]},
    }).decode())
    gateway = Gateway(module_env, tmp, XPBANK_GATEWAY_TOKENS_FILE=str(tokens),
                      XPBANK_API_TOKENS=f'{{"{OPERATOR_TOKEN}": {{"scopes": ["operations"]}}}}').start()
    yield gateway
    gateway.stop()
    assert "Traceback" not in gateway.log()


def values_by_key(settings: Settings, topic: str, keys: set[bytes]) -> dict[bytes, list]:
    found: dict[bytes, list] = {}
    for message in records(settings, topic):
        if message.key in keys:
            found.setdefault(message.key, []).append(message)
    return found


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ---- accepted: arrives as records ----------------------------------------------------


def test_timeback_examples_get_200_and_arrive_keyed_by_their_learner(gateway, settings):
    learner = unique("student")
    sent = {}
    for name, doc in timeback_examples().items():
        doc["data"][0]["actor"]["id"] = doc["data"][0]["actor"]["id"].replace("student-0001", learner)
        doc["data"][0]["id"] = f"urn:uuid:{uuid.uuid4()}"
        status, _, body = gateway.post("/caliper/v1p2", doc)
        assert (status, body) == (200, b""), (name, body)
        sent[doc["data"][0]["id"]] = doc
    arrived = values_by_key(settings, "learning.caliper.v1", {learner.encode()})[learner.encode()]
    assert {orjson.loads(m.value)["data"][0]["id"]: orjson.loads(m.value) for m in arrived} == sent


def test_the_readmes_curl_posts_an_envelope_that_arrives(gateway, settings, tmp_path):
    """The README's command, with this gateway's port and token in place of make run's."""
    readme = (ROOT / "README.md").read_text()
    command = next(line for line in readme.splitlines() if "examples/caliper-envelope.sh" in line)
    command += " " + next(line for line in readme.splitlines() if "gateway-token" in line).strip()
    learner = unique("learner")
    command = (command.replace("learner-000", learner).replace("localhost:6070", f"127.0.0.1:{gateway.port}")
               .replace("$(cat .run/gateway-token)", TOKEN).replace("\\", ""))
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.stdout.startswith("HTTP/1.1 200"), done.stdout + done.stderr
    [arrived] = values_by_key(settings, "learning.caliper.v1", {learner.encode()})[learner.encode()]
    assert caliper_events(arrived.value)[0]["generated"]["items"] == [{"type": "active", "value": 30}]


def caliper_events(value: bytes) -> list[dict]:
    return orjson.loads(value)["data"]


def test_ims_caliper_1_2_example_envelopes_get_200_and_every_entry_arrives(gateway, settings):
    sensor = unique("https://example.edu/sensors")
    sent = []
    for name, doc in ims_examples().items():
        doc["sensor"] = sensor
        status, _, body = gateway.post("/caliper/v1p2", doc, content_type="application/json; charset=utf-8")
        assert status == 200, (name, body)
        sent += [orjson.dumps(event) for event in doc["data"]]
    arrived = [m for m in records(settings, "learning.caliper.v1") if orjson.loads(m.value)["sensor"] == sensor]
    assert sorted(orjson.dumps(e) for m in arrived for e in orjson.loads(m.value)["data"]) == sorted(sent)
    keys = {m.key for m in arrived}
    # by actor.id's last segment (the GradeEvent's actor is the autograder application);
    # IRI-only actors and entity describes by the sensor
    assert keys == {b"554433", b"autograder", sensor.encode()}


def test_an_envelope_with_three_learners_lands_as_three_records_on_their_partitions(gateway, settings):
    learners = [unique(n) for n in ("ann", "bob", "cy")]
    events = [timeback_time_spent(u, t=-n) for n, u in enumerate(learners * 2, 1)]
    doc = envelope(events, sent=-5)
    assert gateway.post("/caliper/v1p2", doc)[0] == 200
    found = values_by_key(settings, "learning.caliper.v1", {u.encode() for u in learners})
    partitions = list(range(settings.partitions))
    for user in learners:
        [message] = found[user.encode()]
        value = orjson.loads(message.value)
        assert value == {**{k: doc[k] for k in ("sensor", "sendTime", "dataVersion")},
                         "data": [e for e in events if e["actor"]["id"].endswith("/" + user)]}
        assert message.partition == DefaultPartitioner()(message.key, partitions, partitions)  # murmur2
        assert message.timestamp == int(datetime.fromisoformat(doc["sendTime"]).timestamp() * 1000)


def test_a_send_time_ahead_of_the_gateways_clock_is_not_the_record_timestamp(gateway, settings):
    learner = unique("ahead")
    doc = envelope([timeback_time_spent(learner)])
    doc["sendTime"] = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    before = time.time() * 1000
    assert gateway.post("/caliper/v1p2", doc)[0] == 200
    [message] = values_by_key(settings, "learning.caliper.v1", {learner.encode()})[learner.encode()]
    assert before - 1000 <= message.timestamp <= time.time() * 1000


def test_submissions_masteries_and_courses_arrive_keyed_as_the_contract_says(gateway, settings):
    user, course = unique("learner"), unique("course")
    started = submission("AttemptStarted", user, "ex1", 0, totalQuestions=2)["value"]
    answers = [submission("AnswerSubmitted", user, "ex1", 1 + q, questionId=f"q{q}", correct=True)["value"] for q in range(2)]
    status, headers, body = gateway.post("/v1/submissions", started)
    assert (status, headers["content-type"], orjson.loads(body)) == (200, "application/json", {"accepted": 1})
    status, _, body = gateway.post("/v1/submissions", answers)
    assert (status, orjson.loads(body)) == (200, {"accepted": 2})
    won = mastery(user, "ex1", 5)["value"]
    assert gateway.post("/v1/masteries", won)[0] == 200
    upserted = {"type": "CourseUpserted", "courseSourcedId": course, "subject": "Math", "units": []}
    assert gateway.post(f"/v1/courses/{course}", upserted, token=CURRICULUM_TOKEN, method="PUT")[0] == 200
    status, _, _ = gateway.request("DELETE", f"/v1/courses/{course}", headers={"Authorization": f"Bearer {CURRICULUM_TOKEN}"})
    assert status == 200
    subs = values_by_key(settings, "learning.submissions.v1", {user.encode()})[user.encode()]
    assert [orjson.loads(m.value) for m in subs] == [started, *answers]
    assert [m.timestamp for m in subs] == [int(datetime.fromisoformat(v["eventTime"]).timestamp() * 1000)
                                           for v in (started, *answers)]
    [mastered] = values_by_key(settings, "learning.mastery.v1", {user.encode()})[user.encode()]
    assert orjson.loads(mastered.value) == won
    courses = values_by_key(settings, "learning.curriculum.v1", {course.encode()})[course.encode()]
    assert [None if m.value is None else orjson.loads(m.value) for m in courses] == [upserted, None]


def test_the_endpoint_configuration_answers_with_the_supported_versions(gateway):
    status, _, body = gateway.request("GET", "/caliper/v1p2", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and orjson.loads(body)["caliperSupportedVersions"] == list(caliper.DATA_VERSIONS)
    assert gateway.request("GET", "/caliper/v1p2")[0] == 401


# ---- refused: a status, a problem document, nothing sent ------------------------------


def problem(response) -> dict:
    status, headers, body = response
    assert headers["content-type"] == "application/problem+json"
    doc = orjson.loads(body)
    assert doc["status"] == status and doc["title"] and doc["detail"]
    return doc


def test_every_refusal_has_its_status_and_a_problem_document_and_sends_nothing(gateway, settings):
    learner = unique("refused")
    good = envelope([timeback_time_spent(learner)])
    other_sensor = good | {"sensor": "https://other.example"}
    too_big = orjson.dumps(good | {"data": good["data"] * 400})
    assert len(too_big) > settings.rules.max_payload_bytes
    cases = [
        (gateway.post("/caliper/v1p2", b"THIS IS NOT VALID JSON"), 400, "malformed JSON"),
        (gateway.post("/caliper/v1p2", good["data"][0]), 400, "no envelope"),
        (gateway.post("/caliper/v1p2", {k: v for k, v in good.items() if k != "sendTime"}), 400, "missing sendTime"),
        (gateway.post("/caliper/v1p2", good, token=None), 401, "bearer token is needed"),
        (gateway.post("/caliper/v1p2", good, token="not-a-token"), 401, "unknown bearer token"),
        (gateway.request("POST", "/caliper/v1p2", orjson.dumps(good), {"Content-Type": "application/json",
                                                                       "Authorization": f"Basic {TOKEN}"}), 401, "bearer"),
        (gateway.post("/caliper/v1p2", good, token=CURRICULUM_TOKEN), 403, "may not send caliper"),
        (gateway.post("/caliper/v1p2", other_sensor, token=SENSOR_TOKEN), 403, "may only send as sensor"),
        (gateway.post("/caliper/v1p2", good, content_type="text/plain"), 415, "send application/json"),
        (gateway.post("/caliper/v1p2", good, content_type="application/x-www-form-urlencoded"), 415, "application/json"),
        (gateway.post("/caliper/v1p2", good, content_type=""), 415, "application/json"),
        (gateway.post("/caliper/v1p2", good | {"dataVersion": caliper.V1P2 + "/"}), 422, "unsupported dataVersion"),
        (gateway.post("/caliper/v1p2", too_big), 413, "XPBANK_MAX_PAYLOAD_BYTES"),
        (chunked(gateway, "/caliper/v1p2", too_big), 413, "XPBANK_MAX_PAYLOAD_BYTES"),
        (gateway.post("/v1/submissions", {"type": "AnswerSubmitted", "userSourcedId": learner}), 422, "is not valid"),
        (gateway.post("/v1/courses/c1", {"type": "CourseUpserted", "courseSourcedId": "c2"}, method="PUT"), 422, "differs"),
        (gateway.post("/v1/masteries", []), 400, "empty array"),
        (gateway.request("GET", "/nowhere"), 404, "Not Found"),
        (gateway.request("DELETE", "/caliper/v1p2"), 405, "Not Allowed"),
    ]
    for response, status, says in cases:
        assert response[0] == status, (status, says, response)
        assert says in problem(response)["detail"], (says, response)
    assert 'Bearer realm="xpbank"' in cases[3][0][1]["www-authenticate"]
    assert orjson.loads(cases[11][0][2])["supportedVersions"] == list(caliper.DATA_VERSIONS)
    assert gateway.post("/caliper/v1p2", good, token=SENSOR_TOKEN)[0] == 200  # its own sensor
    [arrived] = values_by_key(settings, "learning.caliper.v1", {learner.encode()})[learner.encode()]
    assert orjson.loads(arrived.value) == good
    assert not values_by_key(settings, "learning.submissions.v1", {learner.encode()})


def chunked(gateway: Gateway, path: str, body: bytes) -> tuple[int, dict, bytes]:
    """A body without Content-Length (chunked): the limit holds while reading."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        connection.request("POST", path, body=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                           headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
                           encode_chunked=True)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_metrics_count_requests_events_and_records_and_never_show_a_token(gateway):
    before = gateway.metrics(OPERATOR_TOKEN)
    learners = [unique("m"), unique("m")]
    assert gateway.post("/caliper/v1p2", envelope([timeback_time_spent(u) for u in learners]))[0] == 200
    assert gateway.post("/caliper/v1p2", b"{", token="not-a-token")[0] == 401
    after = gateway.metrics(OPERATOR_TOKEN)

    def delta(name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)
    assert delta('xpbank_gateway_requests_total{route="/caliper/v1p2",status="200"}') == 1
    assert delta('xpbank_gateway_requests_total{route="/caliper/v1p2",status="401"}') == 1
    assert delta('xpbank_gateway_events_in_total{kind="caliper"}') == 2
    assert delta('xpbank_gateway_records_out_total{topic="learning.caliper.v1"}') == 2
    assert delta("xpbank_gateway_produce_seconds_count") == 1
    assert after["xpbank_gateway_broker_up"] == 1
    assert gateway.request("GET", "/metrics")[0] == 401  # XPBANK_METRICS_PUBLIC=0: an operations token
    assert gateway.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 401
    status, _, body = gateway.request("GET", "/healthz")
    assert status == 200 and orjson.loads(body)["broker"] == "reachable"
    text = gateway.request("GET", "/metrics", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})[2].decode()
    access = ('"path":"/caliper/v1p2","status":401', '"token":"token-1"')
    deadline = time.monotonic() + 10  # the access log is written every 200 ms (gateway/access_log.py)
    while not all(line in (log := gateway.log()) for line in access) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(line in log for line in access), log[-2000:]
    for secret in (TOKEN, SENSOR_TOKEN, CURRICULUM_TOKEN, OPERATOR_TOKEN, "not-a-token"):
        assert secret not in text and secret not in log


# ---- back-pressure, an absent broker, shutdown ------------------------------------------


def slow_upload(gateway: Gateway, body: bytes, sent: int) -> socket.socket:
    """A request whose headers announce `body` but that has sent only `sent` bytes of it."""
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=30)
    head = (f"POST /caliper/v1p2 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    sock.sendall(head + body[:sent])
    return sock


def until(check, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def finish(sock: socket.socket, body: bytes, sent: int) -> int:
    sock.sendall(body[sent:])
    status = int(sock.recv(4096).split(b" ", 2)[1])
    sock.close()
    return status


def test_records_waiting_for_the_broker_hold_their_bytes_and_a_full_buffer_answers_503(module_env, tmp_path):
    """XPBANK_GATEWAY_BUFFER_BYTES counts the bytes a request produces (keys and values,
    here far more than its body: loose events repeat the envelope's head), held until the
    broker acknowledges or fails them. Records for topics that do not exist are never
    taken (the broker creates no topic), so they hold their bytes for the ack timeout:
    meanwhile the next request finds the buffer full."""
    body = orjson.dumps(envelope([{}] * 60, sensor="https://sensor.example/" + "s" * 400))  # no learner
    produced = sum(len(r.key) + len(r.value) for r in caliper.split(body).records)
    payload_limit = len(body) + 100
    assert caliper.bound(payload_limit) < 2 * produced <= 2 * caliper.bound(len(body))  # one fits, two do not
    gateway = Gateway(module_env | {"XPBANK_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:10]}-absent."}, tmp_path,
                      XPBANK_MAX_PAYLOAD_BYTES=str(payload_limit), XPBANK_METRICS_PUBLIC="1",
                      XPBANK_GATEWAY_BUFFER_BYTES=str(caliper.bound(payload_limit)),
                      XPBANK_GATEWAY_ACK_TIMEOUT_SECONDS="4").start()
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(gateway.post, "/caliper/v1p2", body)
            until(lambda: gateway.metrics()["xpbank_gateway_buffered_bytes"] == produced)
            refused = gateway.post("/caliper/v1p2", body)
            assert refused[0] == 503 and refused[1]["retry-after"] == "1"
            assert "buffer for the broker is full" in problem(refused)["detail"]
            status, _, answer = first.result(30)
        assert status == 503 and orjson.loads(answer)["detail"].startswith("the broker did not take the records")
        until(lambda: gateway.metrics()["xpbank_gateway_buffered_bytes"] == 0)  # given back once failed
    finally:
        gateway.stop()
    assert "Traceback" not in gateway.log()


def test_no_broker_answers_503_with_retry_after_and_healthz_says_so(module_env, tmp_path):
    gateway = Gateway(module_env, tmp_path, XPBANK_BROKER=f"kafka://127.0.0.1:{free_port()}").start(ready=False)
    try:
        response = gateway.post("/caliper/v1p2", envelope([timeback_time_spent()]))
        assert response[0] == 503 and response[1]["retry-after"] == "5"
        assert "broker is unreachable" in problem(response)["detail"]
        health = gateway.request("GET", "/healthz")
        assert health[0] == 503 and "unreachable" in problem(health)["detail"]
        assert gateway.post("/caliper/v1p2", b"{")[0] == 503  # nothing is read while the broker is away
    finally:
        assert gateway.stop() == 0
    assert "broker unreachable" in gateway.log() and "Traceback" not in gateway.log()


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def test_a_stopping_gateway_finishes_the_requests_in_flight(module_env, settings, tmp_path):
    learner = unique("drain")
    body = orjson.dumps(envelope([timeback_time_spent(learner)]))
    gateway = Gateway(module_env, tmp_path).start()
    sock = slow_upload(gateway, body, 10)
    operator = module_env["XPBANK_API_TOKENS"]
    until(lambda: gateway.metrics(operator)["xpbank_gateway_requests_in_flight"] == 1)  # its body being read
    gateway.process.send_signal(15)  # SIGTERM to the process (not the group): as Kubernetes does
    until(lambda: not listening(gateway.port))
    assert finish(sock, body, 10) == 200
    assert gateway.process.wait(30) == 0
    assert values_by_key(settings, "learning.caliper.v1", {learner.encode()})
    assert "draining 1 requests in flight" in gateway.log()
