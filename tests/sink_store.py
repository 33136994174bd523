"""A test gradebook and analytics store for the write-back sinks (docs/write-back.md), with
the semantics the sinks rely on: assessment results kept by sourcedId (PUT creates or
replaces, GET reads), Caliper events kept by id (an event sent twice is one event), an
OAuth2 client-credentials token endpoint, and faults on demand: answers of 503 or 429
with Retry-After, slow answers (requests held in flight), refusals for good, and going
down altogether. Its answers follow docs/openapi/ (Prism checks them in the tests).

Run in a thread of the test process (`StoreServer`), or alone:
    python -m tests.sink_store --port 6073 --token TOKEN      (make run SINKS=1, make bench)"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import orjson
from aiohttp import web

RESULTS = "/ims/oneroster/gradebook/v1p2/assessmentResults/{sourcedId}"
EVENTS = "/caliper/event"
TOKEN = "/oauth2/token"


def imsx(status: int, description: str, **headers: str) -> web.Response:
    return web.json_response({"imsx_codeMajor": "failure", "imsx_severity": "error",
                              "imsx_description": description}, status=status, headers=headers or None)


@dataclass
class Faults:
    """What the store does to requests (besides answering them)."""

    busy: list[tuple[int, str]] = field(default_factory=list)  # next answers: (503 or 429, Retry-After)
    busy_until: float = 0.0  # monotonic time until which every request is answered busy_status
    busy_status: int = 503
    busy_retry_after: str = "1"
    delay: float = 0.0  # seconds every answer waits, after the write is applied
    refused_actors: set[str] = field(default_factory=set)  # envelopes with an event of these learners: 400
    refused_results: set[str] = field(default_factory=set)  # PUTs of these sourcedIds: 422


@dataclass
class Store:
    tokens: set[str] = field(default_factory=set)  # fixed bearer tokens
    clients: dict[str, str] = field(default_factory=dict)  # OAuth2 client id -> secret
    token_lifetime: int = 3600
    results: dict[str, dict] = field(default_factory=dict)
    events: dict[str, dict] = field(default_factory=dict)
    issued: dict[str, float] = field(default_factory=dict)  # OAuth2 token -> expiry (monotonic)
    faults: Faults = field(default_factory=Faults)
    received: Counter = field(default_factory=Counter)  # (method, route, status) answered
    arrived: int = 0  # requests received (answered or not)
    in_flight: int = 0  # received, not yet answered
    in_flight_paths: Counter = field(default_factory=Counter)  # the same, "results" or "events"
    duplicates: int = 0  # events received again (same id)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- what the tests read ------------------------------------------------------

    def snapshot(self) -> tuple[dict[str, dict], dict[str, dict]]:
        with self.lock:
            return dict(self.results), dict(self.events)

    def xp_earned_per_learner(self) -> dict[str, int]:
        total: Counter = Counter()
        for event in self.snapshot()[1].values():
            learner = event["actor"]["id"].rsplit("/", 1)[-1]
            total[learner] += sum(i["value"] for i in event["generated"]["items"] if i["type"] == "xpEarned")
        return dict(total)

    def revoke_tokens(self) -> None:
        """Every OAuth2 token issued so far stops working (its holder gets a 401)."""
        with self.lock:
            self.issued.clear()

    # ---- the server -----------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get(RESULTS, self._get_result)
        app.router.add_put(RESULTS, self._put_result)
        app.router.add_post(EVENTS, self._post_events)
        app.router.add_post(TOKEN, self._token)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler) -> web.StreamResponse:
        self.arrived += 1
        self.in_flight += 1
        path = "events" if request.path == EVENTS else "results" if request.path != TOKEN else "token"
        self.in_flight_paths[path] += 1
        try:
            response = await self._answer(request, handler)
            if self.faults.delay:
                await asyncio.sleep(self.faults.delay)
            route = request.match_info.route.resource.canonical if request.match_info.route.resource else "?"
            self.received[(request.method, route, response.status)] += 1
            return response
        finally:
            self.in_flight -= 1
            self.in_flight_paths[path] -= 1

    async def _answer(self, request: web.Request, handler) -> web.StreamResponse:
        if request.path == TOKEN:
            return await handler(request)
        busy = self._busy()
        if busy is not None:
            if request.path == EVENTS:
                return web.json_response({"status": "error", "message": "busy"}, status=busy[0],
                                         headers={"Retry-After": busy[1]})
            return imsx(busy[0], "busy", **{"Retry-After": busy[1]})
        if not self._authorized(request.headers.get("Authorization", "")):
            if request.path == EVENTS:
                return web.json_response({"status": "error", "message": "unauthorized"}, status=401)
            return imsx(401, "unauthorized")
        return await handler(request)

    def _busy(self) -> tuple[int, str] | None:
        if self.faults.busy:
            return self.faults.busy.pop(0)
        if time.monotonic() < self.faults.busy_until:
            return self.faults.busy_status, self.faults.busy_retry_after
        return None

    def _authorized(self, header: str) -> bool:
        kind, _, token = header.partition(" ")
        if kind != "Bearer" or not token:
            return False
        with self.lock:
            return token in self.tokens or self.issued.get(token, 0) > time.monotonic()

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "client_credentials" or self.clients.get(form.get("client_id")) != form.get(
                "client_secret"):
            return web.json_response({"error": "invalid_client"}, status=401)
        token = secrets.token_urlsafe(16)
        with self.lock:
            self.issued[token] = time.monotonic() + self.token_lifetime
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": self.token_lifetime})

    async def _get_result(self, request: web.Request) -> web.Response:
        with self.lock:
            held = self.results.get(request.match_info["sourcedId"])
        if held is None:
            return imsx(404, "Assessment result not found.")
        return web.json_response({"assessmentResult": held})

    async def _put_result(self, request: web.Request) -> web.Response:
        sourced_id = request.match_info["sourcedId"]
        if sourced_id in self.faults.refused_results:
            return imsx(422, "this result may not be written")
        body = orjson.loads(await request.read())
        result = dict(body["assessmentResult"]) | {"sourcedId": sourced_id,
                                                   "dateLastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                                                                     time.gmtime())}
        with self.lock:
            self.results[sourced_id] = result
        return web.json_response({"assessmentResult": result}, status=201)

    async def _post_events(self, request: web.Request) -> web.Response:
        envelope = orjson.loads(await request.read())
        actors = {e["actor"]["id"].rsplit("/", 1)[-1] for e in envelope["data"]}
        if actors & self.faults.refused_actors:
            return web.json_response({"status": "error", "message": "an event names a learner this server refuses"},
                                     status=400)
        with self.lock:
            for event in envelope["data"]:
                if event["id"] in self.events:
                    self.duplicates += 1
                self.events.setdefault(event["id"], event)
        return web.json_response({"status": "success", "message": f"{len(envelope['data'])} events"})


class StoreServer:
    """The store on 127.0.0.1:`port` in a thread of its own; `down()` closes the listener
    and every connection (clients see connection refused), `up()` opens them again."""

    def __init__(self, store: Store, port: int) -> None:
        self.store, self.port = store, port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def start(self) -> StoreServer:
        self.thread.start()
        return self.up()

    def up(self) -> StoreServer:
        async def start() -> None:
            self.runner = web.AppRunner(self.store.app(), access_log=None, handle_signals=False)
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True).start()
        self._run(start())
        return self

    def down(self) -> None:
        async def stop() -> None:
            await self.runner.cleanup()
            self.runner = None
        self._run(stop())

    def stop(self) -> None:
        if self.runner is not None:
            self.down()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.sink_store", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=6073)
    parser.add_argument("--token", action="append", default=[], help="a bearer token it accepts (repeatable)")
    args = parser.parse_args()
    store = Store(tokens=set(args.token))
    print(f"sink store on http://127.0.0.1:{args.port} (results and events are kept in memory)", flush=True)
    web.run_app(store.app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
