"""The gateway's HTTP routes (aiohttp). Handlers are thin: authenticate, reserve buffer,
read the body, call the pure checks (`caliper`, `inputs`), send, answer.

| route | sends to |
|---|---|
| `POST /caliper/v1p2` (GET: endpoint configuration, IMS §6.2) | `learning.caliper.v1`, one record per learner |
| `POST /v1/submissions` | `learning.submissions.v1`, keyed by learner |
| `POST /v1/masteries` | `learning.mastery.v1`, keyed by learner |
| `PUT` / `DELETE /v1/courses/{courseSourcedId}` | `learning.curriculum.v1`, keyed by course (DELETE: a tombstone) |
| `GET /healthz`, `GET /metrics` | |
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

import orjson
from aiohttp import web

from xpbank.contract.topics import CALIPER
from xpbank.gateway import caliper, inputs
from xpbank.gateway.access_log import AccessLines
from xpbank.gateway.metrics import GatewayMetrics
from xpbank.gateway.problems import PROBLEM_JSON, Refused
from xpbank.gateway.sender import Lease, Sender
from xpbank.gateway.settings import Grant, GatewaySettings

log = logging.getLogger("xpbank.gateway")


@dataclass
class Traffic:
    """Requests being handled, and whether the gateway is draining (then every answer
    closes its connection, so keep-alive clients reconnect to another gateway)."""

    in_flight: int = 0
    draining: bool = False


SENDER = web.AppKey("sender", Sender)
METRICS = web.AppKey("metrics", GatewayMetrics)
SETTINGS = web.AppKey("settings", GatewaySettings)
ACCESS = web.AppKey("access", AccessLines)
TRAFFIC = web.AppKey("traffic", Traffic)
CALIPER_PATH = "/caliper/v1p2"


def create_app(settings: GatewaySettings, access: AccessLines | None = None) -> web.Application:
    """`access`: where the access log's lines go (written every 200 ms while the app runs)."""
    app = web.Application(middlewares=[problems], client_max_size=settings.max_payload_bytes)
    app[SETTINGS], app[SENDER], app[METRICS] = settings, Sender(settings), GatewayMetrics()
    app[ACCESS], app[TRAFFIC] = access or AccessLines(), Traffic()
    app.router.add_post(CALIPER_PATH, post_caliper)
    app.router.add_get(CALIPER_PATH, caliper_config)
    app.router.add_post("/v1/submissions", post_submissions)
    app.router.add_post("/v1/masteries", post_masteries)
    app.router.add_put("/v1/courses/{course}", put_course)
    app.router.add_delete("/v1/courses/{course}", delete_course)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    return app


async def _start(app: web.Application) -> None:
    app[SENDER].start()
    app[ACCESS].start()


async def _stop(app: web.Application) -> None:
    await app[SENDER].stop()
    await app[ACCESS].stop()


# ---- errors and metrics ----------------------------------------------


def route_of(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info.http_exception is None else None
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def problems(request: web.Request, handler) -> web.StreamResponse:
    """Every error as an RFC 7807 problem document; every answer counted by route and status."""
    traffic = request.app[TRAFFIC]
    traffic.in_flight += 1
    try:
        response = await handler(request)
    except Refused as refused:
        response = problem_response(refused)
    except web.HTTPException as exc:  # the router's 404/405, the body limit's 413
        if exc.status < 400:
            raise
        detail = exc.text if exc.status != 413 else (
            f"the body is larger than XPBANK_MAX_PAYLOAD_BYTES={request.app[SETTINGS].max_payload_bytes}")
        response = problem_response(Refused(exc.status, detail, headers={k: v for k, v in exc.headers.items()
                                                                         if k in ("Allow",)}))
    except Exception:
        log.exception("unexpected error route=%s", route_of(request))
        response = problem_response(Refused(500, "the gateway failed on this request; it is logged"))
    finally:
        traffic.in_flight -= 1
    if traffic.draining:
        response.force_close()
    request.app[METRICS].requests[(route_of(request), response.status)] += 1
    return response


def problem_response(refused: Refused) -> web.Response:
    return web.Response(status=refused.status, body=refused.body(), content_type=PROBLEM_JSON,
                        headers=refused.headers)


# ---- authentication and bodies ---------------------------------------------------------


def authenticate(request: web.Request, kind: str) -> Grant:
    """The grant of the request's bearer token (401 without a known one), allowed `kind` (403)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refused(401, "a bearer token is needed: Authorization: Bearer <token>",
                      headers={"WWW-Authenticate": 'Bearer realm="xpbank"'})
    grant = request.app[SETTINGS].tokens.grant(token.strip())
    if grant is None:
        raise Refused(401, "unknown bearer token",
                      headers={"WWW-Authenticate": 'Bearer realm="xpbank", error="invalid_token"'})
    request["grant"] = grant
    if kind not in grant.kinds:
        raise Refused(403, f"token {grant.name!r} may not send {kind} (it may send {', '.join(sorted(grant.kinds))})")
    return grant


async def read_body(request: web.Request, kind: str) -> tuple[Grant, bytes, Lease]:
    """Authenticated, JSON, within the size limit, and holding its bytes of the buffer
    (`with lease:` gives them back once the request's records are settled)."""
    grant = authenticate(request, kind)
    if request.content_type != "application/json":
        raise Refused(415, f"Content-Type {request.content_type!r}: send application/json")
    limit = request.app[SETTINGS].max_payload_bytes
    size = request.content_length
    if size is not None and size > limit:
        raise Refused(413, f"the body is {size:,} bytes, over XPBANK_MAX_PAYLOAD_BYTES={limit}")
    lease = request.app[SENDER].lease(size if size is not None else limit)
    try:
        body = await request.read()
    except BaseException:
        lease.close()
        raise
    return grant, body, lease


async def send(request: web.Request, lease: Lease, topic: str, records: list, events: int, kind: str) -> None:
    metrics = request.app[METRICS]
    started = time.perf_counter()
    await request.app[SENDER].send(lease, topic, records)
    metrics.produce_seconds.observe(time.perf_counter() - started)
    metrics.events_in[kind] += events
    metrics.records_out[topic] += len(records)


def timestamp_ms(moment: datetime | None, now_ms: int) -> int:
    """The record timestamp: the event's time (an envelope's sendTime), never past now."""
    return now_ms if moment is None else min(int(moment.timestamp() * 1000), now_ms)


def now_ms() -> int:
    return int(time.time() * 1000)


# ---- routes ------------------------------------------------------------------------------


async def post_caliper(request: web.Request) -> web.Response:
    grant, body, lease = await read_body(request, "caliper")
    with lease:
        envelope = caliper.split(body)
        if grant.sensor is not None and envelope.sensor != grant.sensor:
            raise Refused(403, f"token {grant.name!r} may only send as sensor {grant.sensor!r}")
        stamp = timestamp_ms(envelope.send_time, now_ms())
        records = [(r.key, r.value, stamp) for r in envelope.records]
        await send(request, lease, CALIPER, records, envelope.events, "caliper")
    return web.Response(status=200)  # IMS §6.1: an empty body


async def caliper_config(request: web.Request) -> web.Response:
    """IMS Caliper 1.2 §6.2 endpoint configuration (the 1.2 text's camelCase names)."""
    authenticate(request, "caliper")
    return web.json_response({
        "caliperMaximumPayloadSize": request.app[SETTINGS].max_payload_bytes // 1024,
        "caliperSupportedVersions": list(caliper.DATA_VERSIONS),
        "caliperSupportedExtensions": {"endpointName": "xpbank gateway"},
    }, dumps=lambda doc: orjson.dumps(doc).decode())


async def _post_events(request: web.Request, kind: str, parse) -> web.Response:
    _, body, lease = await read_body(request, kind)
    with lease:
        keyed = parse(body)
        now = now_ms()
        records = [(k.key, k.value, timestamp_ms(k.event_time, now)) for k in keyed]
        await send(request, lease, keyed[0].topic, records, len(keyed), kind)
    return accepted(len(keyed))


async def post_submissions(request: web.Request) -> web.Response:
    return await _post_events(request, "submissions", inputs.submissions)


async def post_masteries(request: web.Request) -> web.Response:
    return await _post_events(request, "masteries", inputs.masteries)


async def put_course(request: web.Request) -> web.Response:
    course_id = request.match_info["course"]
    return await _post_events(request, "curriculum", lambda body: [inputs.course(body, course_id)])


async def delete_course(request: web.Request) -> web.Response:
    authenticate(request, "curriculum")
    tombstone = inputs.course_deleted(request.match_info["course"])
    with request.app[SENDER].lease(len(tombstone.key)) as lease:
        await send(request, lease, tombstone.topic, [(tombstone.key, None, now_ms())], 1, "curriculum")
    return accepted(1)


def accepted(count: int) -> web.Response:
    return web.Response(status=200, body=orjson.dumps({"accepted": count}), content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    sender = request.app[SENDER]
    if await sender.reachable():
        return web.json_response({"broker": "reachable", "bufferedBytes": sender.held})
    raise Refused(503, f"the broker is unreachable ({sender.last_error})", headers={"Retry-After": "5"})


async def metrics(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    operator = scheme.lower() == "bearer" and settings.operators.grant(token.strip()) is not None
    if not settings.base.metrics_public and not operator:
        raise Refused(401, "/metrics needs an XPBANK_API_TOKENS token with the operations scope "
                           "(or XPBANK_METRICS_PUBLIC=1)", headers={"WWW-Authenticate": 'Bearer realm="xpbank"'})
    sender = request.app[SENDER]
    text = request.app[METRICS].render(sender.held, settings.buffer_bytes, await sender.reachable())
    return web.Response(body=text.encode(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
