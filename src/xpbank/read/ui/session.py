"""How a browser presents its token: once, by the login form or `?token=`, after which an
HttpOnly, SameSite=Strict cookie carries it (Secure when served over TLS). The cookie
holds the token itself, so any API process behind a load balancer accepts it, with the
same scopes as the bearer header. Nothing here logs a token or a query string."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from aiohttp import web

from xpbank.config import ApiTokens
from xpbank.read.auth import LEARNERS, OPERATIONS, authorize
from xpbank.web.limits import header_text

COOKIE = "xpbank_token"
FORM_LIMIT = 16 * 1024  # the largest body the API reads (the login form)
MAX_AGE = 12 * 3600  # seconds: a working day, then the form again
HOME = "/ui/"
SEARCH = "/ui/learners/"


def cookie_token(request: web.Request) -> str | None:
    """The cookie's token; None when absent or when the Cookie header does not parse
    (bytes no token has: a 401, never a 500)."""
    try:
        return request.cookies.get(COOKIE) or None
    except (ValueError, UnicodeError):
        return None


def is_page(path: str) -> bool:
    """An HTML page of the web page (a browser navigates there): refusals redirect."""
    return path in ("/ui", "/ui/") or path.startswith("/ui/learners")


def carries_token(request: web.Request) -> bool:
    return "token" in request.query and (request.path == "/ui" or request.path.startswith("/ui/"))


def is_tls(request: web.Request) -> bool:
    """Served over TLS (here, or by a proxy in front that says so): the cookie is Secure."""
    return request.secure or (header_text(request, "X-Forwarded-Proto") or "").lower() == "https"


def same_origin(request: web.Request) -> bool:
    """A form post from a page of this very server (CSRF): its Origin, else (an opaque
    `null` Origin, or none) its Sec-Fetch-Site must say so. A client that sends neither
    is no browser, so no forged request."""
    origin, site = header_text(request, "Origin"), header_text(request, "Sec-Fetch-Site")
    if (origin is None and "Origin" in request.headers) or (site is None and "Sec-Fetch-Site" in request.headers):
        return False  # sent, but not as text: no browser's
    if origin is not None and origin != "null":
        try:
            return urlsplit(origin).netloc == request.host
        except ValueError:  # e.g. an unclosed IPv6 bracket
            return False
    if site is not None:
        return site in ("same-origin", "none")
    return origin is None


def safe_next(target: str | None) -> str:
    """Where to go after the login: a path of the page on this server, nothing else."""
    if (not target or not target.startswith("/ui") or target.startswith("//") or "\\" in target
            or any(ord(c) < 33 for c in target)):
        return HOME
    return target


def token_scopes(tokens: ApiTokens, presented: str | None) -> set[str]:
    """The scopes a presented token grants (empty: not a token)."""
    return {scope for scope in (LEARNERS, OPERATIONS) if authorize(tokens, presented, scope)[0] == 200}


def redirect(location: str, **headers: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store", **headers})


def login_url(next_: str, error: str | None = None) -> str:
    query = {"next": next_} | ({"error": error} if error else {})
    return "/ui/login?" + urlencode(query, quote_via=quote)


def with_cookie(response: web.Response, request: web.Request, token: str) -> web.Response:
    response.set_cookie(COOKIE, token, max_age=MAX_AGE, path="/", httponly=True, samesite="Strict",
                        secure=is_tls(request) or None)
    return response


def exchange(request: web.Request, tokens: ApiTokens) -> web.Response:
    """`/ui/...?token=T`: set the cookie and redirect to the same URL without the token
    (so it leaves the address bar and the history). A link followed from another site
    (Sec-Fetch-Site: cross-site) is refused: someone else's token would log you in."""
    query = [(k, v) for k, v in request.query.items() if k != "token"]
    target = request.rel_url.raw_path + ("?" + urlencode(query, quote_via=quote) if query else "")
    token = request.query.get("token", "").strip()
    if header_text(request, "Sec-Fetch-Site") == "cross-site":
        return redirect(login_url(safe_next(target), "cross-site"))
    if not token_scopes(tokens, token):
        return redirect(login_url(safe_next(target), "invalid"))
    return with_cookie(redirect(target), request, token)


def refused_page(request: web.Request, status: int, tokens: ApiTokens, presented: str | None) -> web.Response:
    """A page the browser may not see: no valid token -> the login form; a token without
    the operations scope (support staff) at the overview -> the learner search."""
    here = safe_next(request.path_qs)
    if status == 403 and LEARNERS in token_scopes(tokens, presented) and not request.path.startswith("/ui/learners"):
        return redirect(SEARCH)
    return redirect(login_url(here, "scope" if status == 403 else None))


async def login(request: web.Request, tokens: ApiTokens, read_form: Callable[[], Awaitable[bytes]]) -> web.Response:
    """POST /ui/login (form: token, next): the cookie and a redirect to `next`, or back
    to the form saying the token was not accepted. `read_form`: the body, within the
    server's limits."""
    if not same_origin(request):
        return web.json_response({"type": "about:blank", "title": "Forbidden", "status": 403,
                                  "detail": "a login form posted from another site is refused"},
                                 status=403, content_type="application/problem+json")
    form = dict(parse_qsl((await read_form()).decode("utf-8", "replace"), keep_blank_values=True))
    token, target = form.get("token", "").strip(), safe_next(form.get("next", ""))
    if not token_scopes(tokens, token):
        return redirect(login_url(target, "invalid"))
    request["token_name"] = authorize(tokens, token, LEARNERS)[1] or authorize(tokens, token, OPERATIONS)[1]
    return with_cookie(redirect(target), request, token)


async def logout(request: web.Request) -> web.Response:
    if not same_origin(request):
        return redirect(HOME)
    response = redirect(login_url(HOME, "logged-out"))
    response.del_cookie(COOKIE, path="/")
    return response
