"""The one place that reaches into aiohttp's server internals (read from aiohttp 3.14.5,
the pinned version; tests/unit/test_http_server.py fails when they move).

aiohttp has no header read timeout: a client that sends half a request head holds its
socket until the keep-alive timer (3,630 s by default). `runner()` serves an app with a
protocol whose head timer starts at the first byte of a request head and closes the
connection (after a 408) unless the head is complete within `head_timeout` seconds, and
with a keep-alive of `keepalive` seconds. A request aiohttp itself cannot parse (a bad
request line, header or chunk) is a 400 problem document logged at DEBUG: a client's
error, not the server's (aiohttp logs each at ERROR with a traceback). Internals used: `RequestHandler.data_received`,
`connection_lost`, `_waiter` (the future `start()` awaits while no request is queued),
`_request_count` (heads parsed on the connection), `_loop`, `force_close`, `handle_error`, and
`web.Server.__call__` / `_kwargs` / `_loop` (how a server makes a protocol)."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

PINNED = "3.14.5"
_SAID = b"the request head did not arrive in time\n"
TIMEOUT_ANSWER = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n"
                  b"Content-Length: %d\r\n\r\n%b" % (len(_SAID), _SAID))


class HeadTimedHandler(RequestHandler):
    """aiohttp's protocol with a timer on request heads."""

    __slots__ = ("_head_timeout", "_head_timer", "_on_head_timeout")

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        # between requests (start() waits for the next head) or before the first one
        awaiting_head = (waiter is not None and not waiter.done()) or self._request_count == 0
        super().data_received(data)
        waiter = self._waiter
        head_pending = self._request_count == 0 or (waiter is not None and not waiter.done())
        if self._head_timer is None:
            if awaiting_head and head_pending and data and self.transport is not None:
                self._head_timer = self._loop.call_later(self._head_timeout, self._head_too_slow)
        elif not head_pending:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        waiter = self._waiter
        if self._request_count == 0 or (waiter is not None and not waiter.done()):
            if self.transport is not None:
                self.transport.write(TIMEOUT_ANSWER)
            self.force_close()
            self._on_head_timeout()

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        self.logger.debug("refused a request aiohttp could not parse from %s: %s", request.remote, exc)
        detail = str(getattr(exc, "message", None) or message or "the request is malformed").splitlines()[0][:200]
        response = web.Response(status=status, content_type="application/problem+json", body=orjson.dumps(
            {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}))
        response.force_close()
        return response

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)


class _HeadTimedServer(web.Server):
    head_timeout: float = 10.0
    on_head_timeout: Callable[[], None] = staticmethod(lambda: None)

    def __call__(self) -> RequestHandler:
        handler = HeadTimedHandler(self, loop=self._loop, **self._kwargs)
        handler._head_timeout, handler._head_timer = self.head_timeout, None
        handler._on_head_timeout = self.on_head_timeout
        return handler


class HeadTimedRunner(web.AppRunner):
    """An AppRunner whose connections time their request heads."""

    def __init__(self, app: web.Application, *, head_timeout: float, on_head_timeout: Callable[[], None],
                 **kwargs) -> None:
        super().__init__(app, **kwargs)
        self.head_timing = (head_timeout, on_head_timeout)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _HeadTimedServer  # the same object, making HeadTimedHandlers
        server.head_timeout, server.on_head_timeout = self.head_timing
        return server


def runner(app: web.Application, *, head_timeout: float, keepalive: float,
           on_head_timeout: Callable[[], None] = lambda: None, **kwargs) -> web.AppRunner:
    """An AppRunner for `app` with the head timeout and keep-alive; a body left unread
    after an answer is read (and dropped) for at most `head_timeout` seconds."""
    return HeadTimedRunner(app, head_timeout=head_timeout, on_head_timeout=on_head_timeout,
                           keepalive_timeout=keepalive, lingering_time=min(10.0, head_timeout), **kwargs)
