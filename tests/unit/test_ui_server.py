"""The web page's HTTP side without a broker or Redis: how a browser logs in (form or
?token=, an HttpOnly SameSite=Strict cookie), which scope each page needs, the security
headers, CSRF on the login form, and the page's files (no inline script, no markup
built from data)."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from pathlib import Path

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from xpbank.config import Settings
from xpbank.read.server import Host, build
from xpbank.read.ui.routes import PAGES, STATIC

OPS, SUPPORT, SCRAPER = (f"tok-{name}-0123456789abcdef0123456789" for name in ("ops", "support", "metrics"))
TOKENS = orjson.dumps({OPS: {"name": "ops", "scopes": ["operations", "learners"]},
                       SUPPORT: {"name": "support", "scopes": ["learners"]},
                       SCRAPER: {"name": "scraper", "scopes": ["operations"]}}).decode()


@pytest.fixture
async def client():
    settings = Settings.from_env({"XPBANK_API_TOKENS": TOKENS, "XPBANK_REDIS_URL": "redis://127.0.0.1:9/0",
                                  "XPBANK_BROKER": "kafka://127.0.0.1:9"})  # nothing answers there

    async def health() -> tuple[int, dict]:
        return 200, {"ready": True}

    async def metrics() -> str:
        return ""

    async with TestClient(TestServer(build(settings, Host(health, metrics)))) as client:
        yield client


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"xpbank_token={token}"}


def set_cookie(response) -> SimpleCookie:
    jar = SimpleCookie()
    jar.load(response.headers["Set-Cookie"])
    return jar


async def test_a_browser_without_a_token_is_sent_to_the_login_form(client):
    for path, back in (("/ui/", "%2Fui%2F"), ("/ui/learners/u1", "%2Fui%2Flearners%2Fu1")):
        response = await client.get(path, allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (303, f"/ui/login?next={back}")
    response = await client.get("/ui/api/overview")  # data routes answer as the API does
    assert response.status == 401 and (await response.json())["title"] == "Unauthorized"
    login = await client.get("/ui/login")
    assert login.status == 200 and "text/html" in login.headers["Content-Type"]


async def test_a_token_in_the_url_becomes_an_httponly_strict_cookie_and_leaves_the_url(client):
    response = await client.get(f"/ui/learners/?token={OPS}&sourcedId=u%201", allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/ui/learners/?sourcedId=u%201")
    morsel = set_cookie(response)["xpbank_token"]
    assert morsel.value == OPS and morsel["httponly"] and morsel["samesite"] == "Strict"
    assert morsel["path"] == "/" and not morsel["secure"]  # plain HTTP on loopback
    behind_tls = await client.get(f"/ui/?token={OPS}", allow_redirects=False, headers={"X-Forwarded-Proto": "https"})
    assert set_cookie(behind_tls)["xpbank_token"]["secure"]

    wrong = await client.get("/ui/?token=nope", allow_redirects=False)
    assert wrong.headers["Location"] == "/ui/login?next=%2Fui%2F&error=invalid" and "Set-Cookie" not in wrong.headers
    foreign = await client.get(f"/ui/?token={OPS}", allow_redirects=False, headers={"Sec-Fetch-Site": "cross-site"})
    assert foreign.headers["Location"].endswith("error=cross-site") and "Set-Cookie" not in foreign.headers


async def test_the_cookie_opens_the_pages_its_scopes_allow(client):
    overview = await client.get("/ui/", headers=cookie(OPS))
    assert overview.status == 200 and 'data-page="overview"' in await overview.text()
    support = await client.get("/ui/", headers=cookie(SUPPORT), allow_redirects=False)
    assert (support.status, support.headers["Location"]) == (303, "/ui/learners/")  # support staff: the search
    assert (await client.get("/ui/learners/u1", headers=cookie(SUPPORT))).status == 200
    assert (await client.get("/ui/api/overview", headers=cookie(SUPPORT))).status == 403
    scraper = await client.get("/ui/learners/u1", headers=cookie(SCRAPER), allow_redirects=False)
    assert scraper.headers["Location"] == "/ui/login?next=%2Fui%2Flearners%2Fu1&error=scope"
    # the cookie is a credential for the API too; Redis is away here, so the answer is 503, not 401
    for path in ("/users/u1/xp", "/ui/api/learners/u1"):
        away = await client.get(path, headers=cookie(SUPPORT))
        assert away.status == 503 and "read models unavailable" in (await away.json())["detail"], path
    assert (await client.get("/users/u1/xp", headers=cookie("nope"))).status == 401


async def test_the_learner_search_goes_to_the_learners_page(client):
    found = await client.get("/ui/learners?sourcedId=learner/7 x", headers=cookie(SUPPORT), allow_redirects=False)
    assert found.headers["Location"] == "/ui/learners/learner%2F7%20x"
    empty = await client.get("/ui/learners/", headers=cookie(SUPPORT))
    assert empty.status == 200 and 'data-page="learner"' in await empty.text()


async def test_the_login_form_sets_the_cookie_only_for_a_post_from_this_site(client):
    form = {"token": SUPPORT, "next": "/ui/learners/u1"}
    here = f"http://{client.server.host}:{client.server.port}"
    ok = await client.post("/ui/login", data=form, headers={"Origin": here}, allow_redirects=False)
    assert (ok.status, ok.headers["Location"]) == (303, "/ui/learners/u1")
    assert set_cookie(ok)["xpbank_token"].value == SUPPORT
    forged = await client.post("/ui/login", data=form, headers={"Origin": "http://evil.example"}, allow_redirects=False)
    assert forged.status == 403 and "Set-Cookie" not in forged.headers
    framed = await client.post("/ui/login", data=form, headers={"Sec-Fetch-Site": "cross-site"}, allow_redirects=False)
    assert framed.status == 403
    opaque = {"Origin": "null"}  # a sandboxed frame or a no-referrer page: Sec-Fetch-Site decides
    assert (await client.post("/ui/login", data=form, headers=opaque, allow_redirects=False)).status == 403
    same = opaque | {"Sec-Fetch-Site": "same-origin"}
    assert (await client.post("/ui/login", data=form, headers=same, allow_redirects=False)).status == 303
    wrong = await client.post("/ui/login", data={"token": "nope", "next": "/ui/"}, allow_redirects=False)
    assert wrong.headers["Location"] == "/ui/login?next=%2Fui%2F&error=invalid" and "Set-Cookie" not in wrong.headers
    for target in ("//evil.example/ui", "https://evil.example/", "/elsewhere", "/ui\\@evil"):
        away = await client.post("/ui/login", data={"token": OPS, "next": target}, allow_redirects=False)
        assert away.headers["Location"] == "/ui/", target
    out = await client.post("/ui/logout", headers={"Origin": here}, allow_redirects=False)
    assert set_cookie(out)["xpbank_token"].value == "" and out.headers["Location"].startswith("/ui/login")


async def test_every_page_response_carries_the_security_headers(client):
    for path, headers in (("/ui/login", {}), ("/ui/", cookie(OPS)), ("/ui/static/common.js", {})):
        response = await client.get(path, headers=headers)
        assert response.status == 200, path
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Referrer-Policy"] == "same-origin"
    script = await client.get("/ui/static/overview.js")
    assert "javascript" in script.headers["Content-Type"]
    from yarl import URL

    for sneaky in ("/ui/static/%2e%2e/pages/login.html", "/ui/static/..%2Fpages%2Flogin.html"):
        response = await client.session.get(client.make_url("/").join(URL(sneaky, encoded=True)))
        assert response.status in (403, 404), sneaky  # nothing outside static/
    assert (await client.get("/ui/static/")).status in (403, 404)  # no index
    assert (await client.get("/healthz")).headers["X-Content-Type-Options"] == "nosniff"


def test_pages_load_scripts_from_files_only_and_scripts_never_build_markup_from_data():
    for page in PAGES.glob("*.html"):
        html = page.read_text()
        for attrs, body in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S):
            assert 'src="/ui/static/' in attrs and not body.strip(), page.name  # no inline script
        assert not re.search(r"\son[a-z]+\s*=", html), page.name  # no inline event handlers
        assert not re.search(r"\sstyle\s*=", html), page.name
        assert not re.search(r"""(src|href)=["']https?:""", html), page.name  # nothing from another host
    for script in STATIC.glob("*.js"):
        code = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in code, f"{script.name} uses {sink}"
        assert "http://" not in code.replace("http://www.w3.org/2000/svg", "") and "https://" not in code


def test_the_package_data_ships_every_file_of_the_page():
    import tomllib

    root = Path(__file__).resolve().parents[2]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["xpbank.read.ui"]
    here = PAGES.parent
    files = {p.relative_to(here).as_posix() for p in here.rglob("*") if p.is_file() and p.suffix != ".py"
             and "__pycache__" not in p.parts}
    shipped = {f for f in files if any(Path(f).match(g) for g in globs)}
    assert files and shipped == files
