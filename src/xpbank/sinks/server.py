"""A sink's own HTTP door: `GET /healthz` (200 ready, 503 while the broker or the server
fails, with why) and `GET /metrics` (Prometheus text; an XPBANK_API_TOKENS token with the
operations scope unless XPBANK_METRICS_PUBLIC=1). Anything else is a 404 problem document."""

from __future__ import annotations

import hmac
import logging
from http import HTTPStatus

from aiohttp import web

from xpbank.config import Settings
from xpbank.sinks.metrics import Health, SinkMetrics

log = logging.getLogger("xpbank.sinks")
PROBLEM = "application/problem+json"


def problem(status: int, detail: str, **headers: str) -> web.Response:
    return web.json_response({"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
                              "detail": detail}, status=status, content_type=PROBLEM, headers=headers or None)


def may_read_metrics(settings: Settings, authorization: str | None) -> bool:
    if settings.metrics_public:
        return True
    kind, _, presented = (authorization or "").partition(" ")
    if kind.lower() != "bearer" or not presented.strip():
        return False
    allowed = False
    for secret, _, scopes in settings.api_tokens.scopes:  # every token compared, no early exit
        if hmac.compare_digest(secret.reveal().encode(), presented.strip().encode()) and "operations" in scopes:
            allowed = True
    return allowed


def build(settings: Settings, metrics: SinkMetrics, health: Health) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        status, body = health.status()
        return web.json_response(body | {"sink": metrics.sink}, status=status)

    async def metrics_text(request: web.Request) -> web.Response:
        if not may_read_metrics(settings, request.headers.get("Authorization")):
            return problem(401, "/metrics needs an XPBANK_API_TOKENS token with the operations scope "
                                "(or XPBANK_METRICS_PUBLIC=1)", **{"WWW-Authenticate": 'Bearer realm="xpbank"'})
        return web.Response(text=metrics.render(health), content_type="text/plain", charset="utf-8")

    @web.middleware
    async def problems(request: web.Request, handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            return problem(exc.status, exc.reason)

    app = web.Application(middlewares=[problems])
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_text)
    return app


async def serve(settings: Settings, port: int, metrics: SinkMetrics, health: Health) -> web.AppRunner:
    runner = web.AppRunner(build(settings, metrics, health), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host="0.0.0.0", port=port, shutdown_timeout=2).start()
    log.info("sink %s: /healthz and /metrics on :%d", metrics.sink, port)
    return runner
