"""The web page's routes, mounted on the API's app by `server.build`: the HTML pages
(static files: every value reaches the page as JSON and is put in text nodes by the
page's scripts), their JSON, the overview's live stream (server-sent events), the login
form and the static files. Scopes: the overview needs `operations`, learner pages
`learners` (`auth.scope_of`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import orjson
from aiohttp import web

from xpbank.config import Settings
from xpbank.contract.topics import FACTS, SINKS, sink_group
from xpbank.kafka.admin import Admin
from xpbank.read.api import problem
from xpbank.read.auth import current_tokens
from xpbank.read.projector import projected_topics, projector_group
from xpbank.read.read_models import ReadModels
from xpbank.read.ui import session
from xpbank.read.ui.live import LiveTail
from xpbank.read.ui.views import explained_rows, lag_rows, sink_row
from xpbank.web.limits import ClientError, read_body

log = logging.getLogger("xpbank.ui")
HERE = Path(__file__).resolve().parent
PAGES, STATIC = HERE / "pages", HERE / "static"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
TICK = 2.0  # seconds between two overviews pushed to an open page (and the cluster figures' age)
KAFKA_TIMEOUT = 6.0
WRITE_SECONDS = 10.0  # an event the page does not take within this ends its stream


def problem_text(exc: BaseException) -> str:
    return (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)[:300]


class Overview:
    """The overview document: the live figures, and the cluster's (lag, the group, the
    projector, Redis, this process) computed at most every TICK seconds for all viewers."""

    def __init__(self, settings: Settings, host, read_models: Callable[[], ReadModels], live: LiveTail) -> None:
        self.settings, self.host, self.read_models, self.live = settings, host, read_models, live
        self.cached: tuple[float, dict] = (0.0, {})
        self.lock = asyncio.Lock()
        self.admin: Admin | None = None

    async def snapshot(self) -> dict:
        self.live.want()
        async with self.lock:
            if time.monotonic() - self.cached[0] >= TICK:
                self.cached = (time.monotonic(), await self._cluster())
        return {"now": time.time(), "live": self.live.snapshot(), **self.cached[1]}

    async def _cluster(self) -> dict:
        if self.admin is None:
            self.admin = Admin(self.settings, timeout=5)
        lag, group, projector, process, redis, *sinks = await asyncio.gather(
            self._lag(), self._group(), self._projector(), self._process(), self._redis(), *map(self._sink, SINKS))
        return {"lag": lag, "group": group, "projector": projector, "process": process, "readModels": redis,
                "sinks": sinks}

    async def _lag(self) -> dict:
        watch = self.host.watch
        if watch is None:
            return {"error": "this process watches no worker group"}
        try:
            rows = await asyncio.wait_for(self.admin.partition_lag(watch.group, watch.topics), KAFKA_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - the broker away: said on the page
            return {"group": watch.group, "error": problem_text(exc)}
        return {"group": watch.group, **lag_rows(rows)}

    async def _group(self) -> dict:
        watch = self.host.watch
        if watch is None:
            return {"error": "this process watches no worker group"}
        try:
            found = await asyncio.wait_for(self.admin.group(watch.group), KAFKA_TIMEOUT)
        except Exception as exc:  # noqa: BLE001
            return {"group": watch.group, "error": problem_text(exc)}
        inputs = set(watch.topics)
        members = [{"name": name, "partitions": sum(1 for t, _ in tps if t in inputs)}
                   for name, tps in sorted(found.members.items())]
        return {"group": found.group, "state": found.state, "rebalancing": found.rebalancing, "members": members}

    async def _projector(self) -> dict:
        group = projector_group(self.settings)
        try:
            rows = await asyncio.wait_for(self.admin.partition_lag(group, projected_topics(self.settings)),
                                          KAFKA_TIMEOUT)
        except Exception as exc:  # noqa: BLE001
            return {"group": group, "error": problem_text(exc)}
        lag = lag_rows(rows)
        return {"group": group, "total": lag["total"], "perTopic": lag["perTopic"]}

    async def _sink(self, sink: str) -> dict:
        """A write-back sink, from its consumer group's members and lag on the facts."""
        group = sink_group(self.settings.topic_prefix, sink)
        try:
            found, rows = await asyncio.wait_for(asyncio.gather(
                self.admin.group(group), self.admin.partition_lag(group, [self.settings.topic_prefix + FACTS])),
                KAFKA_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - the broker away: said on the page
            return {"sink": sink, "group": group, "error": problem_text(exc)}
        return sink_row(sink, group, found.state, len(found.members), lag_rows(rows))

    async def _process(self) -> dict:
        status, health = await self.host.health()
        engine = await self.host.status() if self.host.status is not None else None
        return {"healthStatus": status, "health": health, "engine": engine}

    async def _redis(self) -> dict:
        """Whether Redis answers, and whether the read models it holds are complete."""
        try:
            status = await asyncio.wait_for(self.read_models().status(), 3)
        except Exception as exc:  # noqa: BLE001 - Redis away: said on the page
            return {"ok": False, "error": problem_text(exc)}
        return {"ok": True, "state": status.name, **({} if status.ready else {"problem": status.problem()})}


def page(name: str) -> Callable:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(PAGES / name)
    return handler


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every response: nosniff. The page's: a strict Content-Security-Policy (scripts and
    styles from files of this server only, no inline script), no framing, no referrer to
    other sites, nothing stored but the static files (revalidated)."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.path == "/ui" or request.path.startswith("/ui/"):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"  # (no-referrer would make form posts' Origin null)
        static = request.path.startswith("/ui/static/")
        response.headers.setdefault("Cache-Control", "no-cache" if static else "no-store")


def add_ui(app: web.Application, settings: Settings, host, read_models: Callable[[], ReadModels], doors) -> None:
    """`doors`: the server's `Doors` (client limits, event streams open at once)."""
    live = LiveTail(settings)
    overview = Overview(settings, host, read_models, live)

    async def login(request: web.Request) -> web.Response:
        return await session.login(request, current_tokens(settings),
                                   lambda: read_body(request, session.FORM_LIMIT, doors.http, "the login form's limit"))

    async def overview_json(request: web.Request) -> web.Response:
        return web.json_response(await overview.snapshot(), dumps=_dumps)

    async def learner_json(request: web.Request) -> web.Response:
        user = request.match_info["user"]
        view = await read_models().learner(user)
        if not view["known"]:
            detail = f"learner {user} is unknown: the read models hold no XP, attempt or banking decision of it"
            return web.json_response(problem(404, detail), status=404, content_type="application/problem+json")
        for row in view["exercises"]:
            if row["explanation"] is not None:
                row["rows"] = explained_rows(row["explanation"])
        return web.json_response(view, dumps=_dumps)

    async def goodbye(app: web.Application) -> None:  # open streams end before the server waits for them
        live.publish("bye", None)

    async def close(app: web.Application) -> None:
        await live.stop()

    app.router.add_get("/ui", home)
    app.router.add_get("/ui/", page("overview.html"))
    app.router.add_get("/ui/login", page("login.html"))
    app.router.add_post("/ui/login", login)
    app.router.add_post("/ui/logout", session.logout)
    app.router.add_get("/ui/learners", search)
    app.router.add_get("/ui/learners/", search)
    app.router.add_get("/ui/learners/{user:[^/]+}", page("learner.html"))
    app.router.add_get("/ui/api/overview", overview_json)
    app.router.add_get("/ui/api/events", event_stream(live, overview, doors.max_streams))
    app.router.add_get("/ui/api/learners/{user:[^/]+}", learner_json)
    app.router.add_get("/ui/static/{filename}", static)
    app.on_response_prepare.append(security_headers)
    app.on_shutdown.append(goodbye)
    app.on_cleanup.append(close)


async def home(request: web.Request) -> web.Response:
    return session.redirect("/ui/")


async def search(request: web.Request) -> web.StreamResponse:
    wanted = request.query.get("sourcedId", "").strip()
    if wanted:
        return session.redirect("/ui/learners/" + quote(wanted, safe=""))
    return web.FileResponse(PAGES / "learner.html")


def event_stream(live: LiveTail, overview: Overview, max_streams: int) -> Callable:
    async def events(request: web.Request) -> web.StreamResponse:
        """The overview as server-sent events: an `overview` at once and every TICK
        seconds, `awards` and `deadLetters` (the newest, batched) as they arrive. At most
        XPBANK_UI_MAX_STREAMS at once (503 beyond); a page that does not read its events
        within WRITE_SECONDS loses its stream (it reconnects)."""
        if len(live.subscribers) >= max_streams:
            raise ClientError(503, f"{max_streams} live streams are open on this process "
                                   "(XPBANK_UI_MAX_STREAMS); the page retries", headers={"Retry-After": "10"})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await response.prepare(request)
        queue = live.subscribe()
        try:
            await _stream(response, queue, overview)
        except (ConnectionResetError, ConnectionError):
            pass  # the page went away
        except TimeoutError:  # the page does not read: drop it
            if request.transport is not None:
                request.transport.close()
        finally:
            live.unsubscribe(queue)
        return response
    return events


async def _stream(response: web.StreamResponse, queue: asyncio.Queue, overview: Overview) -> None:
    """Writes the events until the server says goodbye; raises TimeoutError when the
    page does not take one within WRITE_SECONDS."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(WRITE_SECONDS):
        await response.write(b"retry: 3000\n\n")
    await _send(response, "overview", await overview.snapshot())
    due = loop.time() + TICK
    while True:
        try:
            kind, item = await asyncio.wait_for(queue.get(), max(0.0, due - loop.time()))
        except TimeoutError:
            await _send(response, "overview", await overview.snapshot())
            due = loop.time() + TICK
            continue
        batch: dict[str, list] = {"award": [], "deadLetter": [], "bye": [], "state": []}
        for kind, item in [(kind, item), *_drain(queue)]:
            batch[kind].append(item)
        for kind, name in (("award", "awards"), ("deadLetter", "deadLetters")):
            if batch[kind]:
                await _send(response, name, batch[kind][-25:])
        if batch["bye"]:
            return


FILE_TYPES = {".js": "text/javascript", ".css": "text/css"}


async def static(request: web.Request) -> web.StreamResponse:
    """The page's scripts and styles: the files of static/ by name, nothing else (a 404
    problem document for any other name, as every refusal)."""
    name = request.match_info["filename"]
    path = STATIC / name
    kind = FILE_TYPES.get(path.suffix)
    if kind is None or name.startswith(".") or path.parent != STATIC or not path.is_file() or path.is_symlink():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Content-Type": f"{kind}; charset=utf-8"})


def _drain(queue: asyncio.Queue) -> list:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


def _dumps(value) -> str:
    return orjson.dumps(value).decode()


async def _send(response: web.StreamResponse, event: str, data) -> None:
    async with asyncio.timeout(WRITE_SECONDS):
        await response.write(b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n")
