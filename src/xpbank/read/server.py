"""The HTTP API (`XPBANK_WEB_PORT`), served by every worker and by `xpbank api` alone:
learners' XP, attempts and banking evidence from the Redis read models (so any process
answers for any learner, whatever engine decided), `/healthz` and `/metrics` from the
process that hosts it, and the web page under /ui/ (`read/ui/`). Every route but
/healthz (and /metrics when public), the login form and the page's static files needs a
bearer token (or the page's cookie holding one); errors are RFC 7807 problem documents."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from xpbank.config import Settings
from xpbank.kafka.background import throttle_library_logs
from xpbank.contract.outputs import Explanation
from xpbank.core.explain import explain_banking
from xpbank.read.api import problem, render_metrics
from xpbank.read.auth import authorize, bearer, current_tokens, scope_of
from xpbank.read.read_models import ReadModels, ReadModelsUnavailable
from xpbank.read.ui import session

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


def problem_response(status: int, detail: str, **headers: str) -> web.Response:
    return web.json_response(problem(status, detail), status=status, content_type=PROBLEM, headers=headers or None)


def build(settings: Settings, host: Host) -> web.Application:
    models: list[ReadModels] = []  # connected on the first request, never at import

    def read_models() -> ReadModels:
        if not models:
            models.append(ReadModels.connect(settings))
        return models[0]

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

    @web.middleware
    async def guard(request: web.Request, handler) -> web.StreamResponse:
        scope = scope_of(request.path, settings.metrics_public)
        if scope is not None:
            if session.carries_token(request):  # /ui/...?token=: a cookie, and the URL without it
                return session.exchange(request, current_tokens(settings))
            presented = bearer(request.headers.get("Authorization")) or session.cookie_token(request)
            status, request["token_name"] = authorize(current_tokens(settings), presented, scope)
            if status != 200 and session.is_page(request.path):  # a browser: to the login form
                return session.refused_page(request, status, current_tokens(settings), presented)
            if status == 401:
                return problem_response(401, "a valid bearer token is needed", **{"WWW-Authenticate": 'Bearer realm="xpbank"'})
            if status == 403:
                return problem_response(403, f"this token may not read {scope} routes")
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return problem_response(exc.status, exc.reason)
        except ReadModelsUnavailable as exc:  # lost or being rebuilt: never a wrong total
            return problem_response(503, str(exc), **{"Retry-After": "5"})
        except Exception as exc:  # noqa: BLE001 - Redis away and the like: say so, never crash
            if isinstance(exc, OSError | ConnectionError | TimeoutError) or type(exc).__module__.startswith("redis"):
                return problem_response(503, f"read models unavailable: {type(exc).__name__}", **{"Retry-After": "2"})
            log.exception("request failed path=%s", request.path)
            return problem_response(500, f"internal error: {type(exc).__name__}")

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
        text = await host.metrics() + render_requests(host.requests)
        return web.Response(text=text, content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    async def close(app: web.Application) -> None:
        if models:
            await models[0].close()

    app = web.Application(middlewares=[access, guard])
    from xpbank.read.ui.routes import add_ui

    add_ui(app, settings, host, read_models)
    app.router.add_get("/users/{user}/xp", user_xp)
    app.router.add_get("/users/{user}/exercises/{exercise}/attempt", attempt)
    app.router.add_get("/users/{user}/exercises/{exercise}/explain", explain)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.on_cleanup.append(close)
    return app


def render_requests(requests: Counter) -> str:
    lines = ["# HELP xpbank_api_requests_total HTTP API requests, per route and status",
             "# TYPE xpbank_api_requests_total counter"]
    for (route, status), n in sorted(requests.items()):
        lines.append(f'xpbank_api_requests_total{{route="{route}",status="{status}"}} {n}')
    return "\n".join(lines) + "\n"


async def serve(settings: Settings, host: Host, port: int | None = None) -> web.AppRunner:
    """Start the API on the port (default XPBANK_WEB_PORT); the caller cleans the runner up."""
    if not settings.api_tokens.scopes:
        log.warning("XPBANK_API_TOKENS is empty: the API answers 401 to every request but /healthz")
    runner = web.AppRunner(build(settings, host), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host="0.0.0.0", port=port or settings.web_port, shutdown_timeout=5).start()
    log.info("API on :%d", port or settings.web_port)
    return runner


def main_api(settings: Settings, watch: Watch | None = None) -> None:
    """`xpbank api`: the API alone (any number of them, behind a load balancer), ready
    while Redis answers; stops on SIGTERM or SIGINT. `watch`: the worker group whose lag
    and members the web page shows."""
    import signal

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    throttle_library_logs()

    async def run() -> None:
        models = ReadModels.connect(settings)
        seen: dict[str, bool | None] = {"redis": None, "ready": None}

        async def readiness() -> tuple[int, dict]:
            """Ready while Redis answers and holds complete read models."""
            try:
                status = await models.status()
            except Exception as exc:  # noqa: BLE001 - Redis away: not ready
                seen.update(redis=False, ready=False)
                return 503, {"ready": False, "redisReachable": False, "readModels": "unknown",
                             "problem": f"Redis does not answer: {type(exc).__name__}"}
            seen.update(redis=True, ready=status.ready)
            body = {"ready": status.ready, "redisReachable": True,
                    "readModels": status.name}
            if not status.ready:
                body["problem"] = status.problem()
            return (200 if status.ready else 503), body

        async def api_metrics() -> str:
            await readiness()
            return render_metrics({}, None, {}, gauges={
                "xpbank_redis_up": None if seen["redis"] is None else int(seen["redis"]),
                "xpbank_read_models_ready": None if seen["ready"] is None else int(seen["ready"])})

        runner = await serve(settings, Host(readiness, api_metrics, watch=watch))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()
            await models.close()

    asyncio.run(run())
