"""Who may read what: bearer tokens (XPBANK_API_TOKENS) and the scope each route needs.
Tokens are compared in constant time, each against all, and never logged: a request is
logged with the token's name only."""

from __future__ import annotations

import hmac

from xpbank.config import ApiTokens, Rereadable, Settings

LEARNERS, OPERATIONS = "learners", "operations"
_token_files: dict[str, Rereadable[ApiTokens]] = {}


def current_tokens(settings: Settings) -> ApiTokens:
    """The API's tokens now. XPBANK_API_TOKENS_FILE is read again when it changes, so
    tokens rotate without a restart (docs/operations.md, Rotate tokens)."""
    path = settings.api_tokens_file
    if not path:
        return settings.api_tokens
    if path not in _token_files:
        _token_files[path] = Rereadable(path, ApiTokens.reread, "XPBANK_API_TOKENS_FILE", settings.api_tokens)
    return _token_files[path].get()


def scope_of(path: str, metrics_public: bool) -> str | None:
    """The scope a route needs (None: open to anyone)."""
    if path in ("/healthz", "/openapi.json") or (path == "/metrics" and metrics_public):
        return None
    if path == "/metrics":
        return OPERATIONS
    if path in ("/ui/login", "/ui/logout") or path.startswith("/ui/static/"):  # the web page's form and files
        return None
    if path.startswith(("/ui/learners", "/ui/api/learners")):
        return LEARNERS
    if path == "/ui" or path.startswith("/ui/"):  # the overview
        return OPERATIONS
    return LEARNERS


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    kind, _, token = authorization.partition(" ")
    return token.strip() or None if kind.lower() == "bearer" else None


def authorize(tokens: ApiTokens, presented: str | None, scope: str) -> tuple[int, str | None]:
    """(200, token name), (401, None) for no or an unknown token, or (403, name) for a
    token without the scope."""
    if not presented:
        return 401, None
    given = presented.encode("utf-8", "surrogateescape")  # bytes no token has still compare (unequal)
    found = None
    for secret, name, scopes in tokens.scopes:  # no early exit: every token is compared
        if hmac.compare_digest(secret.reveal().encode(), given):
            found = (name, scopes)
    if found is None:
        return 401, None
    name, scopes = found
    return (200, name) if scope in scopes else (403, name)
