"""The HTTP API (`XPBANK_WEB_PORT`), served by every worker and by `xpbank api` alone:
learners' XP, attempts and banking evidence from the Redis read models (so any process
answers for any learner, whatever engine decided), `/healthz` and `/metrics` from the
process that hosts it, and the web page under /ui/ (`read/ui/`). Every route but
/healthz (and /metrics when public), the login form and the page's static files needs a
bearer token (or the page's cookie holding one); errors are RFC 7807 problem documents."""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from xpbank.config import Settings, env_int
from xpbank.contract.outputs import Explanation
from xpbank.core.explain import explain_banking
from xpbank.read.api import problem
from xpbank.read.auth import authorize, current_tokens, scope_of
from xpbank.read.openapi import DESCRIPTION
from xpbank.read.read_models import ReadModels, ReadModelsUnavailable
from xpbank.read.ui import session
from xpbank.web import aiohttp_server
from xpbank.web.limits import ClientError, HttpLimits, bearer_token

log = logging.getLogger("xpbank.api")
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Watch:
    """The worker group the web page reports on: its consumer group and input topics."""

    group: str
    topics: tuple[str, ...]


@dataclass
class Host:
    """What the serving process knows beyond Redis: its readiness and its metrics text;
    for the web page, its engine's status (`ui.views.engine_status`: readiness,
    rebalancing, the continuity layer's repairs) and the worker group to watch."""

    health: Callable[[], Awaitable[tuple[int, dict]]]
    metrics: Callable[[], Awaitable[str]]
    requests: Counter = field(default_factory=Counter)  # (route, status) -> count
    status: Callable[[], Awaitable[dict]] | None = None  # None: no engine here (`xpbank api`)
    watch: Watch | None = None
    head_timeouts: Tally = field(default_factory=lambda: Tally())  # connections closed by the head timeout


class Tally:
    """A counter bumped by a callback (aiohttp's protocol calls it)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@dataclass(frozen=True)
class Doors:
    """What a client may hold: the HTTP limits (`XPBANK_HTTP_*`) and the live page's event
    streams open at once (`XPBANK_UI_MAX_STREAMS`)."""

    http: HttpLimits = HttpLimits()
    max_streams: int = 32

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Doors:
        env = os.environ if env is None else env
        return cls(HttpLimits.from_env(env), env_int(env, "XPBANK_UI_MAX_STREAMS", minimum=1))


def problem_response(status: int, detail: str, **headers: str) -> web.Response:
    return web.json_response(problem(status, detail), status=status, content_type=PROBLEM, headers=headers or None)


def build(settings: Settings, host: Host, doors: Doors | None = None) -> web.Application:
    doors = doors or Doors.from_env()
    models: list[ReadModels] = []  # connected on the first request, never at import

    def read_models() -> ReadModels:
        if not models:
            models.append(ReadModels.connect(settings))
        return models[0]

    async def close(app: web.Application) -> None:
        if models:
            await models[0].close()

    # the access log outermost: it counts and logs the guard's refusals and problem documents too
    app = web.Application(middlewares=[_access(host), _guard(settings)], client_max_size=session.FORM_LIMIT)
    from xpbank.read.ui.routes import add_ui

    add_ui(app, settings, host, read_models, doors)
    _add_api(app, host, read_models)
    app.on_cleanup.append(close)
    return app


def _access(host: Host) -> Callable:
    @web.middleware
    async def access(request: web.Request, handler) -> web.StreamResponse:
        """Counts requests by route and status, and logs them: path without the query
        string (it could carry a token) and the token's name, never the token."""
        started = time.monotonic()
        response = await handler(request)
        route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
        host.requests[(route, response.status)] += 1
        log.info("request method=%s path=%s status=%d token=%s ms=%.1f", request.method, request.path,
                 response.status, request.get("token_name") or "-", (time.monotonic() - started) * 1000)
        return response
    return access


def _guard(settings: Settings) -> Callable:
    @web.middleware
    async def guard(request: web.Request, handler) -> web.StreamResponse:
        """Authentication, then the route, inside one error handling: whatever the
        client sends (bytes in a header or cookie no token has, a malformed form) is a
        4xx; a 500 is a bug, logged."""
        try:
            refused = _authenticate(request, settings)
            return refused if refused is not None else await handler(request)
        except ClientError as error:
            response = problem_response(error.status, error.detail, **error.headers)
            if error.close:
                response.force_close()
            return response
        except web.HTTPException as exc:
            return problem_response(exc.status, exc.reason)
        except ReadModelsUnavailable as exc:  # lost or being rebuilt: never a wrong total
            return problem_response(503, str(exc), **{"Retry-After": "5"})
        except ConnectionResetError:
            raise  # the client went away: nobody to answer
        except Exception as exc:  # noqa: BLE001 - Redis away and the like: say so, never crash
            if isinstance(exc, OSError | ConnectionError | TimeoutError) or type(exc).__module__.startswith("redis"):
                return problem_response(503, f"read models unavailable: {type(exc).__name__}", **{"Retry-After": "2"})
            log.exception("request failed path=%s", request.path)
            return problem_response(500, f"internal error: {type(exc).__name__}")
    return guard


def _authenticate(request: web.Request, settings: Settings) -> web.StreamResponse | None:
    """None when the route may be served; else the answer (a refusal or a redirect)."""
    scope = scope_of(request.path, settings.metrics_public)
    if scope is None:
        return None
    tokens = current_tokens(settings)
    if session.carries_token(request):  # /ui/...?token=: a cookie, and the URL without it
        return session.exchange(request, tokens)
    presented = bearer_token(request) or session.cookie_token(request)
    status, request["token_name"] = authorize(tokens, presented, scope)
    if status != 200 and session.is_page(request.path):  # a browser: to the login form
        return session.refused_page(request, status, tokens, presented)
    if status == 401:
        return problem_response(401, "a valid bearer token is needed", **{"WWW-Authenticate": 'Bearer realm="xpbank"'})
    if status == 403:
        return problem_response(403, f"this token may not read {scope} routes")
    return None


def _add_api(app: web.Application, host: Host, read_models: Callable[[], ReadModels]) -> None:
    """The API's own routes: learners' XP, attempts and banking evidence, health, metrics
    and the OpenAPI description."""

    async def user_xp(request: web.Request) -> web.Response:
        return web.json_response(await read_models().user_xp(request.match_info["user"]))

    async def attempt(request: web.Request) -> web.Response:
        status, body = await read_models().attempt(request.match_info["user"], request.match_info["exercise"])
        return web.json_response(body, status=status)

    async def explain(request: web.Request) -> web.Response:
        user, exercise = request.match_info["user"], request.match_info["exercise"]
        evidence = await read_models().evidence(user, exercise)
        if evidence is None:  # no mastery of it processed (the same answer as `xpbank explain`)
            evidence = explain_banking(user, exercise, None, None, {}).model_dump(mode="json")
        return web.json_response(Explanation.model_validate(evidence).model_dump(mode="json"))

    async def healthz(request: web.Request) -> web.Response:
        status, body = await host.health()
        return web.json_response(body, status=status)

    async def metrics(request: web.Request) -> web.Response:
        text = await host.metrics() + render_requests(host.requests, host.head_timeouts.count)
        return web.Response(text=text, content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(DESCRIPTION), content_type="application/json")

    app.router.add_get("/users/{user:[^/]+}/xp", user_xp)  # ids may hold { and } (%7B, %7D)
    app.router.add_get("/users/{user:[^/]+}/exercises/{exercise:[^/]+}/attempt", attempt)
    app.router.add_get("/users/{user:[^/]+}/exercises/{exercise:[^/]+}/explain", explain)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)


def render_requests(requests: Counter, head_timeouts: int = 0) -> str:
    lines = ["# HELP xpbank_api_requests_total HTTP API requests, per route and status",
             "# TYPE xpbank_api_requests_total counter"]
    for (route, status), n in sorted(requests.items()):
        lines.append(f'xpbank_api_requests_total{{route="{route}",status="{status}"}} {n}')
    lines += ["# HELP xpbank_api_head_timeouts_total connections closed because a request head did not arrive in time",
              "# TYPE xpbank_api_head_timeouts_total counter", f"xpbank_api_head_timeouts_total {head_timeouts}"]
    return "\n".join(lines) + "\n"


async def serve(settings: Settings, host: Host, port: int | None = None, doors: Doors | None = None) -> web.AppRunner:
    """Start the API on the port (default XPBANK_WEB_PORT); the caller cleans the runner up."""
    if not settings.api_tokens.scopes:
        log.warning("XPBANK_API_TOKENS is empty: the API answers 401 to every request but /healthz")
    doors = doors or Doors.from_env()
    runner = aiohttp_server.runner(build(settings, host, doors), head_timeout=doors.http.header_timeout,
                                   keepalive=doors.http.keepalive, on_head_timeout=host.head_timeouts.__call__,
                                   access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host="0.0.0.0", port=port or settings.web_port, shutdown_timeout=5).start()
    log.info("API on :%d", port or settings.web_port)
    return runner
