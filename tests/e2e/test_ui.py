"""The web page in a real browser (headless Chromium) against a worker that processed a
small classroom: the overview shows the classroom's award count and a lag of 0 and a
dead letter's `<script>` payload as text; a learner page shows the total `/users/{u}/xp`
gives and the explain rows `xpbank explain` prints; the login form; and what the page
says with no worker and no Redis. A screenshot of each page is kept in the test's tmp dir.
Learners and exercises whose ids hold `:`, `/`, `{`, `}`, `%`, spaces and non-ASCII
(SPEC §2.5) are answered each for itself over the API and on their page, the pairs
('a:b', 'c') and ('a', 'b:c') included."""

from __future__ import annotations

import time
from types import SimpleNamespace
from urllib.parse import quote

import orjson
import pytest

from tests import builders
from tests.conftest import drop_redis_keys, make_env, xpbank
from tests.e2e import browser as chrome
from tests.e2e.browser import screenshot, wait
from tests.e2e.harness import (
    Worker, current, eventually, free_port, get_json, get_or_none, produce, topic_values, wait_caught_up,
)
from tests.e2e.test_parity_and_replay import classroom_log
from tests.e2e.test_read_models_api import wait_projected
from xpbank.config import Settings

pytestmark = pytest.mark.e2e
XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


@pytest.fixture(scope="module")
def classroom(broker, redis_url, tmp_path_factory):
    """A worker that processed a classroom of 4 learners (its outputs projected)."""
    tmp = tmp_path_factory.mktemp("ui")
    env, tag = make_env(broker, redis_url, tmp)
    env["XPBANK_ENGINE"] = "faust"
    settings = Settings.from_env(env)
    lines = classroom_log(learners=4, seed=7) + odd_ids()
    log_file = tmp / "classroom.jsonl"
    log_file.write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    assert xpbank(env, "topics", "create").returncode == 0
    produce(env, lines)
    worker = Worker(env, "w1", tmp).start()
    try:
        wait_caught_up(settings, timeout=120)
        wait_projected(settings)
        eventually(lambda: answers(worker, 200), timeout=60, every=0.3)
        yield SimpleNamespace(env=env, settings=settings, worker=worker, log_file=log_file, tmp=tmp,
                              token=env["XPBANK_API_TOKENS"], url=f"http://127.0.0.1:{worker.env['XPBANK_WEB_PORT']}")
    finally:
        worker.stop()
        drop_redis_keys(redis_url, tag)
    assert "Traceback" not in worker.log()


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    browser, driver_path = chrome.chromium_paths()
    tmp = tmp_path_factory.mktemp("chromium")
    session = chrome.start(browser, driver_path, tmp / "profile", tmp / "chromedriver.log")
    yield session
    session.quit()


ODD = "ü {x}%z:w"  # a learner whose id needs every escape (no "/": Caliper ids end at the last one)
SLASHED = "p/q {1}"  # a learner known by its submissions only
COURSE = "c:1/{course} %"


def odd_ids() -> list[dict]:
    """A course and learners whose ids would meet if joined with ':' unescaped."""
    video, ex_c, ex_bc = (builders.resource("v:1 {é}", 1, "Video", 10), builders.resource("c", 2, "Exercise", 5),
                          builders.resource("b:c", 3, "Exercise", 5))
    lines = [builders.course(COURSE, [[video, ex_c, ex_bc]])]
    for user, exercise, answers, start in (("a:b", "c", [True, True], 0), ("a", "b:c", [False, True], 10),
                                           (ODD, "b:c", [True, True], 20), (SLASHED, "c", [True, False], 30)):
        if "/" not in user:
            lines.append(builders.heartbeat(user, "v:1 {é}", 120, start - 200, course_id=COURSE))
        lines += [line | {"value": line["value"] | {"courseSourcedId": COURSE}}
                  for line in builders.attempt(user, exercise, start, answers)]
    return lines


def quoted(*ids: str) -> list[str]:
    return [quote(i, safe="") for i in ids]


def answers(process: Worker, status: int) -> None:
    assert get_or_none(process, "/healthz") == status


def text_of(driver, selector: str) -> str:
    return driver.find_element("css selector", selector).text


def test_the_overview_shows_the_awards_the_lag_and_dead_letters_as_text(classroom, driver, tmp_path):
    awards = len(topic_values(classroom.settings, "xp.banked.v1"))
    assert awards > 0
    driver.get(f"{classroom.url}/ui/?token={classroom.token}")
    assert driver.current_url == f"{classroom.url}/ui/"  # the token left the address bar
    [cookie] = driver.get_cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == ("xpbank_token", True, "Strict")
    assert driver.execute_script("return document.cookie") == ""  # invisible to scripts

    wait(driver, lambda d: text_of(d, "#awards-hour") == str(awards), what=f"{awards} awards in the last hour")
    wait(driver, lambda d: text_of(d, "#lag-total") == "0", what="a lag of 0")
    assert text_of(driver, "#members-count") == "1"
    assert len(driver.find_elements("css selector", "#awards tbody tr")) == min(awards, 25)
    assert "ready\nyes" in text_of(driver, "#process")
    wait(driver, lambda d: [row.split()[:3] for row in text_of(d, "#sinks tbody").splitlines()]
         == [["oneroster", "never", "run"], ["caliper", "never", "run"]], what="both write-back sinks, never run")

    produce(classroom.env, [{"topic": "learning.caliper.v1", "key": "learner-001", "raw": XSS}])  # live, now
    wait(driver, lambda d: any(XSS in p.text for p in d.find_elements("css selector", "#dl-latest pre.payload")),
         what="the <script> dead letter, pushed live")
    assert driver.execute_script("return window.__xss") is None  # shown, never run
    assert driver.find_elements("css selector", "#dl-latest script, #dl-latest img") == []
    wait(driver, lambda d: "malformed_json 1" in text_of(d, "#dl-reasons").splitlines(), what="1 malformed_json")
    screenshot(driver, tmp_path / "overview.png")


def test_a_learner_page_shows_the_api_total_and_the_explain_rows_of_the_cli(classroom, driver, tmp_path):
    users = [f"learner-{n:03d}" for n in range(4)]
    totals = {u: get_json(classroom.worker, f"/users/{u}/xp")[1]["totalXp"] for u in users}
    user = max(totals, key=totals.get)
    status, view = get_json(classroom.worker, f"/ui/api/learners/{user}")
    assert status == 200
    explained = [e for e in view["exercises"] if e["explanation"] and e["explanation"]["resources"]]
    assert explained, f"{user} has no mastery with a banking window"
    exercise = explained[0]["exerciseSourcedId"]
    cli = xpbank(classroom.env, "explain", user, exercise, "--log", str(classroom.log_file))
    assert cli.returncode == 0, cli.stderr.decode()
    lines = cli.stdout.decode().splitlines()
    header = next(n for n, line in enumerate(lines) if "seconds<=T" in line)
    end = next(n for n, line in enumerate(lines) if "banked by this mastery" in line)
    printed = [line.split() for line in lines[header + 1:end]]
    assert printed

    driver.get(f"{classroom.url}/ui/learners/{user}?token={classroom.token}")
    assert driver.current_url == f"{classroom.url}/ui/learners/{user}"
    wait(driver, lambda d: text_of(d, "#total-xp") == str(totals[user]), what=f"total XP {totals[user]}")
    table = f'article.explain[data-exercise="{exercise}"] tbody tr'
    rows = wait(driver, lambda d: [[c.text for c in r.find_elements("css selector", "td")]
                                   for r in d.find_elements("css selector", table)], what="the explain table")
    assert [r[:7] for r in rows] == [p[:7] for p in printed]
    assert [r[7] for r in rows] == [" ".join(p[7:]) for p in printed]
    assert len(driver.find_elements("css selector", "#exercises tbody tr")) == len(view["exercises"])
    screenshot(driver, tmp_path / "learner.png")

    driver.get(f"{classroom.url}/ui/learners/nobody-at-all")
    wait(driver, lambda d: "unknown" in chrome.banner(d), what="the unknown learner's state")
    assert driver.find_element("id", "learner").is_displayed() is False
    screenshot(driver, tmp_path / "unknown-learner.png")


def test_the_login_form_and_the_pages_without_a_worker_or_redis(classroom, driver, tmp_path):
    driver.delete_all_cookies()
    driver.get(f"{classroom.url}/ui/")
    wait(driver, lambda d: d.current_url.startswith(f"{classroom.url}/ui/login"), what="the login form")
    driver.find_element("id", "token").send_keys("not-the-token")
    driver.find_element("css selector", "#login button").click()
    wait(driver, lambda d: "not accepted" in text_of(d, "#login-problem"), what="a refused token")
    screenshot(driver, tmp_path / "login.png")
    driver.find_element("id", "token").send_keys(classroom.token)
    driver.find_element("css selector", "#login button").click()
    wait(driver, lambda d: d.current_url == f"{classroom.url}/ui/", what="the overview after the login")

    # an `xpbank api` for a generation no worker runs, with Redis away
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    api = Worker(classroom.env | {"XPBANK_GENERATION": "9", "XPBANK_REDIS_URL": dead_redis,
                                  "XPBANK_WEB_PORT": str(free_port())}, "api", tmp_path, "api").start()
    try:
        url = f"http://127.0.0.1:{api.env['XPBANK_WEB_PORT']}"
        eventually(lambda: answers(api, 503), timeout=30, every=0.2)  # not ready: Redis is away
        driver.get(f"{url}/ui/learners/learner-000?token={classroom.token}")
        wait(driver, lambda d: "Redis" in chrome.banner(d) and "cannot answer now" in chrome.banner(d),
             what="the Redis-down state")
        screenshot(driver, tmp_path / "learner-no-redis.png")
        driver.get(f"{url}/ui/")
        wait(driver, lambda d: "No worker is running" in chrome.banner(d), what="the no-worker state")
        assert "Redis" in text_of(driver, "#read-models") and "answers" not in text_of(driver, "#read-models")
        screenshot(driver, tmp_path / "overview-no-worker.png")
        started = time.monotonic()  # with the page's event stream open
        api.stop()
        assert time.monotonic() - started < 10  # an open page's stream does not hold the shutdown up
    finally:
        api.stop()
    assert "Traceback" not in api.log()


def test_ids_with_every_separator_are_answered_each_for_itself(classroom):
    facts = current(topic_values(classroom.settings, "xp.facts.v1"))
    totals = {u: sum(f["xp"] for f in facts.values() if f["userSourcedId"] == u) for u in ("a:b", "a", ODD, SLASHED)}
    assert totals["a:b"] > 0 and totals[ODD] > 0, totals
    want = {("a:b", "c"): 100.0, ("a", "b:c"): 50.0, (ODD, "b:c"): 100.0, (SLASHED, "c"): 50.0}
    for (user, exercise), accuracy in want.items():
        u, e = quoted(user, exercise)
        status, view = get_json(classroom.worker, f"/users/{u}/exercises/{e}/attempt")
        assert status == 200 and (view["userSourcedId"], view["exerciseSourcedId"]) == (user, exercise)
        assert (view["status"], view["accuracy"]) == ("completed", accuracy)
        status, xp = get_json(classroom.worker, f"/users/{u}/xp")
        assert (status, xp["userSourcedId"], xp["totalXp"]) == (200, user, totals[user])
        status, evidence = get_json(classroom.worker, f"/users/{u}/exercises/{e}/explain")
        assert status == 200 and (evidence["userSourcedId"], evidence["exerciseSourcedId"]) == (user, exercise)
    assert get_json(classroom.worker, "/users/a/exercises/c/attempt")[0] == 404  # no tuple meets another
    assert get_json(classroom.worker, "/users/a%3Ab/exercises/b%3Ac/attempt")[0] == 404
    fact_ids = {f["factId"] for f in facts.values() if f["userSourcedId"] in ("a:b", "a")}
    assert {"exercise:a%3Ab:c:1", "exercise:a:b%3Ac:1"} <= fact_ids


def test_a_learner_page_of_an_id_with_every_separator(classroom, driver, tmp_path):
    [user] = quoted(ODD)
    status, view = get_json(classroom.worker, f"/ui/api/learners/{user}")
    assert status == 200 and view["known"] and view["userSourcedId"] == ODD
    driver.get(f"{classroom.url}/ui/learners/{user}?token={classroom.token}")
    wait(driver, lambda d: text_of(d, "#learner-id") == ODD, what="the learner's id as text")
    wait(driver, lambda d: text_of(d, "#total-xp") == str(view["xp"]["totalXp"]), what="its total")
    assert [r["exerciseSourcedId"] for r in view["exercises"]] == ["b:c"]
    screenshot(driver, tmp_path / "odd-learner.png")
