"""The `Authorization` header of a sink's requests: a fixed bearer token, or an OAuth2
client-credentials token fetched from the token endpoint, kept until shortly before it
expires and fetched again at once when the API answers 401 (SPEC §3.7). Secrets reach
the token endpoint's form and the header only: never a log line or an error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

from xpbank.sinks.settings import Credentials

DEFAULT_LIFETIME = 3600.0  # a token answer without expires_in


class TokenUnavailable(Exception):
    """The token endpoint did not give a token (down, or refused the client): retried."""


def refresh_at(obtained: float, expires_in: float) -> float:
    """When to fetch the next token: at 80 % of its lifetime, and at least 30 s before it
    expires when it lives longer than a minute."""
    margin = max(expires_in * 0.2, 30.0) if expires_in > 60 else expires_in * 0.2
    return obtained + expires_in - margin


class TokenSource:
    def __init__(self, credentials: Credentials, session: Callable[[], aiohttp.ClientSession],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.credentials, self.session, self.clock = credentials, session, clock
        self.token: str | None = None if credentials.oauth2 else credentials.token.reveal()
        self.renew_at = 0.0
        self.fetches = 0
        self.lock = asyncio.Lock()

    async def header(self) -> str:
        if self.credentials.oauth2 and (self.token is None or self.clock() >= self.renew_at):
            async with self.lock:  # concurrent requests share one fetch
                if self.token is None or self.clock() >= self.renew_at:
                    await self._fetch()
        return f"Bearer {self.token}"

    def refused(self, header: str) -> None:
        """The API answered 401 to a request made with `header`: its token is not good
        any more (the next request fetches one, unless another already did)."""
        if self.credentials.oauth2 and header == f"Bearer {self.token}":
            self.token = None

    async def _fetch(self) -> None:
        form = {"grant_type": "client_credentials", "client_id": self.credentials.client_id.reveal(),
                "client_secret": self.credentials.client_secret.reveal()}
        started = self.clock()
        try:
            async with self.session().post(self.credentials.token_url, data=form,
                                           headers={"Accept": "application/json"}) as response:
                status = response.status
                answer = await response.json(content_type=None) if status == 200 else None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
            raise TokenUnavailable(f"token endpoint: {type(exc).__name__}") from None
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if status != 200 or not isinstance(token, str) or not token:
            raise TokenUnavailable(f"token endpoint answered {status}" + ("" if status != 200 else " without a token"))
        lifetime = answer.get("expires_in")
        lifetime = float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else DEFAULT_LIFETIME
        self.token, self.renew_at = token, refresh_at(started, lifetime)
        self.fetches += 1
