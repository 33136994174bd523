"""The worker's HTTP API on Faust's web server (`XPBANK_WEB_PORT`). Handlers are thin:
read state, call the pure functions of `api.py`, answer JSON (or Prometheus text).

A learner's attempt and explanation are read from the tables of the worker that owns
the learner's partition; `table_route` forwards a request that lands elsewhere."""

from __future__ import annotations

import asyncio
import logging

import faust
from faust import web as faust_web

from xpbank.read.api import UserPairs, attempt_view, health, problem, render_metrics
from xpbank.core.explain import explain_banking
from xpbank.kafka.admin import group_lag
from xpbank.read.read_models import ReadModels

log = logging.getLogger("xpbank.web")


def add_api(wiring, store, tables: dict[str, faust.Table], curriculum_view, settings, lag_topics) -> None:
    """Register the pages on `wiring.app`. `lag_topics`: the worker group's input topics."""
    app = wiring.app
    read_models: list[ReadModels] = []  # opened on the first request, never at import

    def models() -> ReadModels:
        if not read_models:
            read_models.append(ReadModels.connect(settings.redis_url, settings.redis_prefix))
        return read_models[0]

    @app.page("/users/{user}/xp", name="xpbank.user_xp")
    class UserXp(faust_web.View):
        async def get(self, request, user: str):
            try:
                return self.json(await models().user_xp(user))
            except Exception as exc:  # noqa: BLE001 - Redis away: say so, do not crash
                return self.json(problem(503, f"read models unavailable: {type(exc).__name__}"), status=503,
                                 content_type="application/problem+json")

    @app.page("/users/{user}/exercises/{exercise}/attempt", name="xpbank.attempt")
    class Attempt(faust_web.View):
        @app.table_route(table=tables["attempts"], match_info="user")
        async def get(self, request, user: str, exercise: str):
            status, body = attempt_view(user, exercise, store.attempts(user, exercise))
            return self.json(body, status=status)

    @app.page("/users/{user}/exercises/{exercise}/explain", name="xpbank.explain")
    class Explain(faust_web.View):
        @app.table_route(table=tables["masteries"], match_info="user")
        async def get(self, request, user: str, exercise: str):
            ref = store.mastery(user, exercise)
            course = store.course(ref.courseSourcedId) if ref else None
            explanation = explain_banking(user, exercise, ref, course, UserPairs(store, user))
            return self.json(explanation.model_dump(mode="json"))

    @app.page("/healthz", name="xpbank.healthz")
    class Healthz(faust_web.View):
        async def get(self, request):
            recovered = app.tables.recovery.completed.is_set()
            status, body = health(recovered, bool(app.rebalancing), curriculum_view.ready.is_set())
            return self.json(body, status=status)

    @app.page("/metrics", name="xpbank.metrics")
    class Metrics(faust_web.View):
        async def get(self, request):
            try:
                lag = await asyncio.wait_for(group_lag(settings, app.conf.id, lag_topics), 5)
            except Exception as exc:  # noqa: BLE001 - the rest of the metrics still count
                log.debug("consumer lag unavailable: %s", exc)
                lag = None
            sizes = {name: _size(table) for name, table in tables.items()}
            text = render_metrics(wiring.metrics, lag, sizes)
            return self.text(text, content_type="text/plain; version=0.0.4")


def _size(table: faust.Table) -> int:
    try:
        return len(table)
    except Exception:  # noqa: BLE001 - a store mid-rebalance
        return 0
