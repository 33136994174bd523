"""What both HTTP servers allow a client (`XPBANK_HTTP_*`): a request head within the
header timeout, a body at no less than a minimum rate, idle keep-alive connections for
KEEPALIVE_SECONDS (75 s: longer than a load balancer's usual 60 s, so the balancer closes
first). A refusal is a `ClientError` (its status and a detail the server words as a
problem document)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from xpbank.config import env_int

KEEPALIVE_SECONDS = 75.0


@dataclass
class ClientError(Exception):
    """A request answered with `status` and a problem document; `close`: drop the connection."""

    status: int
    detail: str
    headers: dict = field(default_factory=dict)
    close: bool = False


@dataclass(frozen=True)
class HttpLimits:
    header_timeout: float = 10.0
    body_min_rate: int = 16384  # bytes per second
    keepalive: float = KEEPALIVE_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HttpLimits:
        return cls(header_timeout=float(env_int(env, "XPBANK_HTTP_HEADER_TIMEOUT_SECONDS", minimum=1)),
                   body_min_rate=env_int(env, "XPBANK_HTTP_BODY_MIN_BYTES_PER_SECOND", minimum=1))

    def body_seconds(self, size: int) -> float:
        """How long a body of `size` bytes may take: the header timeout's grace, then the
        minimum rate."""
        return self.header_timeout + size / self.body_min_rate


async def read_body(request: web.Request, limit: int, limits: HttpLimits,
                    limit_name: str = "XPBANK_MAX_PAYLOAD_BYTES") -> bytes:
    """The body, at most `limit` bytes (413 beyond, naming `limit_name`), within
    `limits.body_seconds` of its announced size (of `limit` when chunked; 408 after); a
    malformed or cut chunked body is a 400. A client that goes away raises
    ConnectionResetError (nobody to answer)."""
    size = request.content_length
    if size is not None and size > limit:
        raise ClientError(413, f"the body is {size:,} bytes, over {limit_name}={limit}")
    seconds = limits.body_seconds(size if size is not None else limit)
    chunks, received = [], 0
    try:
        async with asyncio.timeout(seconds):
            while chunk := await request.content.readany():
                received += len(chunk)
                if received > limit:
                    raise ClientError(413, f"the body is over {limit_name}={limit} bytes", close=True)
                chunks.append(chunk)
    except TimeoutError:
        raise ClientError(408, f"the body did not arrive within {seconds:.0f} s (XPBANK_HTTP_HEADER_TIMEOUT_SECONDS "
                               f"plus the size at XPBANK_HTTP_BODY_MIN_BYTES_PER_SECOND={limits.body_min_rate})",
                          close=True) from None
    except (web.RequestPayloadError, BadHttpMessage) as exc:
        raise ClientError(400, f"the body is malformed: {_cause(exc)}", close=True) from None
    return b"".join(chunks)


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ or exc.__context__ or exc
    return (type(inner).__name__ + (f": {inner}" if str(inner) else ""))[:200]


def header_text(request: web.Request, name: str) -> str | None:
    """A header as text, None when absent or not text a client could mean (aiohttp
    decodes headers as UTF-8 with surrogate escapes: bytes that are not UTF-8, or control
    characters, are refused here rather than failing later)."""
    value = request.headers.get(name)
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    if any(ord(c) < 32 and c != "\t" for c in value):
        return None
    return value


def bearer_token(request: web.Request) -> str | None:
    """The token of `Authorization: Bearer <token>`, or None (absent, another scheme,
    or bytes no token has)."""
    header = header_text(request, "Authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
