"""The gateway's HTTP routes (aiohttp). Handlers are thin: authenticate, admit (the
token's rates), read the body, call the pure checks (`caliper`, `inputs`), reserve the
records' bytes in the buffer, send, answer.

| route | sends to |
|---|---|
| `POST /caliper/v1p2` (GET: endpoint configuration, IMS §6.2) | `learning.caliper.v1`, one record per learner |
| `POST /v1/submissions` | `learning.submissions.v1`, keyed by learner |
| `POST /v1/masteries` | `learning.mastery.v1`, keyed by learner |
| `PUT` / `DELETE /v1/courses/{courseSourcedId}` | `learning.curriculum.v1`, keyed by course (DELETE: a tombstone) |
| `GET /healthz`, `GET /metrics`, `GET /openapi.json` (this table, as OpenAPI 3.1) | |
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
from xpbank.gateway.openapi import DESCRIPTION
from xpbank.gateway.problems import PROBLEM_JSON, Refused
from xpbank.gateway.sender import Sender
from xpbank.gateway.settings import GRANT, Grant, GatewaySettings
from xpbank.gateway.throttle import TokenLimits
from xpbank.web.limits import ClientError, bearer_token
from xpbank.web.limits import read_body as read_within

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
LIMITS = web.AppKey("limits", TokenLimits)
CALIPER_PATH = "/caliper/v1p2"


def create_app(settings: GatewaySettings, access: AccessLines | None = None) -> web.Application:
    """`access`: where the access log's lines go (written every 200 ms while the app runs)."""
    app = web.Application(middlewares=[problems], client_max_size=settings.max_payload_bytes)
    app[SETTINGS], app[SENDER], app[METRICS] = settings, Sender(settings), GatewayMetrics()
    app[ACCESS], app[TRAFFIC] = access or AccessLines(), Traffic()
    app[LIMITS] = TokenLimits(settings.requests_per_second, settings.bytes_per_second, settings.reads_per_token,
                              burst_bytes=max(settings.bytes_per_second, settings.max_payload_bytes))
    app.router.add_post(CALIPER_PATH, post_caliper)
    app.router.add_get(CALIPER_PATH, caliper_config)
    app.router.add_post("/v1/submissions", post_submissions)
    app.router.add_post("/v1/masteries", post_masteries)
    app.router.add_put("/v1/courses/{course:[^/]+}", put_course)
    app.router.add_delete("/v1/courses/{course:[^/]+}", delete_course)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
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
    """Every error as an RFC 7807 problem document; every answer counted by route and
    status. Authentication runs inside (in the handlers): no input escapes as a 500."""
    traffic = request.app[TRAFFIC]
    traffic.in_flight += 1
    try:
        response = await handler(request)
    except Refused as refused:
        response = problem_response(refused)
    except ClientError as error:
        response = problem_response(Refused(error.status, error.detail, headers=error.headers))
        if error.status == 408:
            request.app[METRICS].timeouts["body"] += 1
        if error.close:
            response.force_close()
    except web.HTTPException as exc:  # the router's 404/405
        if exc.status < 400:
            raise
        response = problem_response(Refused(exc.status, exc.text or exc.reason,
                                            headers={k: v for k, v in exc.headers.items() if k in ("Allow",)}))
    except ConnectionError:
        raise  # the client went away: nobody to answer
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
    token = bearer_token(request)
    if token is None:
        raise Refused(401, "a bearer token is needed: Authorization: Bearer <token>",
                      headers={"WWW-Authenticate": 'Bearer realm="xpbank"'})
    grant = request.app[SETTINGS].tokens.grant(token)
    if grant is None:
        request.app[METRICS].auth_failures += 1
        raise Refused(401, "unknown bearer token",
                      headers={"WWW-Authenticate": 'Bearer realm="xpbank", error="invalid_token"'})
    request[GRANT] = grant
    if kind not in grant.kinds:
        raise Refused(403, f"token {grant.name!r} may not send {kind} (it may send {', '.join(sorted(grant.kinds))})")
    return grant


async def read_body(request: web.Request, kind: str) -> tuple[Grant, bytes]:
    """Authenticated, JSON, within the size limit and the token's rates, read at no less
    than the minimum rate (the broker reachable: nothing is read while it is away)."""
    grant = authenticate(request, kind)
    if request.content_type != "application/json":
        raise Refused(415, f"Content-Type {request.content_type[:100]!r}: send application/json")
    settings, limits = request.app[SETTINGS], request.app[LIMITS]
    size = request.content_length
    if size is not None and size > settings.max_payload_bytes:
        raise Refused(413, f"the body is {size:,} bytes, over XPBANK_MAX_PAYLOAD_BYTES={settings.max_payload_bytes}")
    request.app[SENDER].require()
    limits.admit(grant, size)
    with limits.reading(grant):
        body = await read_within(request, settings.max_payload_bytes, settings.http)
    if size is None:
        limits.charge_bytes(grant, len(body))
    return grant, body


async def send(request: web.Request, body_size: int, topic: str, records: list, events: int, kind: str) -> None:
    """Reserve the records' bytes (503 when the buffer is full), send them and wait for
    the broker; 413 when they would exceed `caliper.bound` of the body."""
    produced = sum(len(key) + (len(value) if value is not None else 0) for key, value, _ in records)
    if produced > caliper.bound(body_size):
        raise Refused(413, f"the request would write {produced:,} bytes, over twice its body plus 64 KiB "
                           f"({caliper.bound(body_size):,}); send it in smaller parts")
    metrics, sender = request.app[METRICS], request.app[SENDER]
    with sender.lease(produced) as lease:
        started = time.perf_counter()
        await sender.send(lease, topic, records)
    metrics.produce_seconds.observe(time.perf_counter() - started)
    metrics.events_in[kind] += events
    metrics.records_out[topic] += len(records)
    metrics.bytes_out += produced


def timestamp_ms(moment: datetime | None, now_ms: int) -> int:
    """The record timestamp: the event's time (an envelope's sendTime), never past now."""
    return now_ms if moment is None else min(int(moment.timestamp() * 1000), now_ms)


def now_ms() -> int:
    return int(time.time() * 1000)


def limits_of(request: web.Request) -> caliper.Limits:
    rules = request.app[SETTINGS].base.rules
    return caliper.Limits(rules.max_id_length, rules.max_events_per_envelope)


# ---- routes ------------------------------------------------------------------------------


async def post_caliper(request: web.Request) -> web.Response:
    grant, body = await read_body(request, "caliper")
    limits = limits_of(request)
    checked = caliper.check(body, limits)
    if grant.sensor is not None and checked.sensor != grant.sensor:  # before any splitting
        raise Refused(403, f"token {grant.name!r} may only send as sensor {grant.sensor!r}")
    envelope = caliper.records(checked, body, limits)
    stamp = timestamp_ms(envelope.send_time, now_ms())
    records = [(r.key, r.value, stamp) for r in envelope.records]
    await send(request, len(body), CALIPER, records, envelope.events, "caliper")
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
    _, body = await read_body(request, kind)
    keyed = parse(body, limits_of(request))
    now = now_ms()
    records = [(k.key, k.value, timestamp_ms(k.event_time, now)) for k in keyed]
    await send(request, len(body), keyed[0].topic, records, len(keyed), kind)
    return accepted(len(keyed))


async def post_submissions(request: web.Request) -> web.Response:
    return await _post_events(request, "submissions", inputs.submissions)


async def post_masteries(request: web.Request) -> web.Response:
    return await _post_events(request, "masteries", inputs.masteries)


async def put_course(request: web.Request) -> web.Response:
    course_id = request.match_info["course"]
    return await _post_events(request, "curriculum", lambda body, limits: [inputs.course(body, course_id, limits)])


async def delete_course(request: web.Request) -> web.Response:
    grant = authenticate(request, "curriculum")
    tombstone = inputs.course_deleted(request.match_info["course"], limits_of(request))
    request.app[LIMITS].admit(grant, 0)
    await send(request, len(tombstone.key), tombstone.topic, [(tombstone.key, None, now_ms())], 1, "curriculum")
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
    token = bearer_token(request)
    operator = token is not None and settings.operators.grant(token) is not None
    if not settings.base.metrics_public and not operator:
        raise Refused(401, "/metrics needs an XPBANK_API_TOKENS token with the operations scope "
                           "(or XPBANK_METRICS_PUBLIC=1)", headers={"WWW-Authenticate": 'Bearer realm="xpbank"'})
    sender = request.app[SENDER]
    text = request.app[METRICS].render(sender.held, settings.buffer_bytes, await sender.reachable(),
                                       request.app[LIMITS].limited, request.app[TRAFFIC].in_flight - 1)  # not this one
    return web.Response(body=text.encode(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def openapi(request: web.Request) -> web.Response:
    """This gateway's OpenAPI 3.1 description (open: it holds no secret)."""
    return web.Response(body=orjson.dumps(DESCRIPTION), content_type="application/json")
