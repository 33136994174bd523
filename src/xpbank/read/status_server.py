"""A process's own `/healthz` and `/metrics`, for the processes that serve no API (the
projector on its own): `/healthz` open to anyone (503 with the reason when not ready),
`/metrics` behind an operations token like the API's (or public with
XPBANK_METRICS_PUBLIC=1). Answers are RFC 7807 problem documents on errors."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from xpbank.config import Settings
from xpbank.read.api import problem
from xpbank.read.auth import authorize, bearer, scope_of

log = logging.getLogger("xpbank")
PROBLEM = "application/problem+json"


def build(settings: Settings, health: Callable[[], Awaitable[tuple[int, dict]]],
          metrics: Callable[[], Awaitable[str]]) -> web.Application:
    @web.middleware
    async def guard(request: web.Request, handler) -> web.StreamResponse:
        scope = scope_of(request.path, settings.metrics_public)
        if scope is not None:
            try:
                presented = bearer(request.headers.get("Authorization"))
            except UnicodeError:
                presented = None
            status, _ = authorize(settings.api_tokens, presented, scope)
            if status != 200:
                detail = "a valid bearer token is needed" if status == 401 else f"this token may not read {scope} routes"
                return web.json_response(problem(status, detail), status=status, content_type=PROBLEM)
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return web.json_response(problem(exc.status, exc.reason), status=exc.status, content_type=PROBLEM)

    async def healthz(request: web.Request) -> web.Response:
        status, body = await health()
        return web.json_response(body, status=status)

    async def metrics_route(request: web.Request) -> web.Response:
        return web.Response(text=await metrics(), content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    app = web.Application(middlewares=[guard])
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_route)
    return app


async def serve_status(settings: Settings, port: int, health: Callable[[], Awaitable[tuple[int, dict]]],
                       metrics: Callable[[], Awaitable[str]]) -> web.AppRunner:
    runner = web.AppRunner(build(settings, health, metrics), access_log=None, handle_signals=False,
                           keepalive_timeout=75)
    await runner.setup()
    await web.TCPSite(runner, host="0.0.0.0", port=port, shutdown_timeout=5).start()
    log.info("/healthz and /metrics on :%d", port)
    return runner
