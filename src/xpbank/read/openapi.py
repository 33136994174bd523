"""The read API's OpenAPI 3.1 description (`GET /openapi.json` on every worker and
`xpbank api`), the web page's routes included; tests keep it equal to the routes
(test_openapi.py) and fuzz a live API against it (Schemathesis)."""

from __future__ import annotations

from xpbank.contract.outputs import Explanation
from xpbank.web.openapi import BEARER, document, json_response, model_schemas, problems, ref, text_response

AUTH = [{"bearer": []}, {"cookie": []}]  # the header, or the page's cookie holding the same token
READ = (401, 403, 503)  # a route reading the read models may be answered
ID = {"type": "string", "minLength": 1}


def param(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": ID}


XP_VIEW = {"type": "object", "required": ["userSourcedId", "totalXp", "byDate"],
           "properties": {"userSourcedId": {"type": "string"}, "totalXp": {"type": "integer"},
                          "byDate": {"type": "object", "additionalProperties": {"type": "integer"}}}}
ATTEMPT_VIEW = {"type": "object", "required": ["userSourcedId", "exerciseSourcedId", "status", "attempt"],
                "properties": {"userSourcedId": {"type": "string"}, "exerciseSourcedId": {"type": "string"},
                               "status": {"enum": ["open", "completed"]}, "attempt": {"type": "integer"}}}
NO_ATTEMPT = {"type": "object", "required": ["userSourcedId", "exerciseSourcedId", "status", "nextAttempt"],
              "properties": {"status": {"const": "none"}, "nextAttempt": {"type": "integer"}}}
READINESS = {"type": "object", "required": ["ready"], "properties": {"ready": {"type": "boolean"}}}
HTML = text_response("the page (static HTML; its scripts read the JSON routes)", "text/html")
SEE_OTHER = {"description": "a redirect: to the login form (no valid token), the learner search "
                            "(a learners-only token at the overview), or the URL without ?token="}


def page(summary: str) -> dict:
    return {"get": {"summary": summary, "security": AUTH, "responses": {"200": HTML, "303": SEE_OTHER}}}


def reading(summary: str, ok: dict, parameters: list, **more: dict) -> dict:
    return {"get": {"summary": summary, "security": AUTH, "parameters": parameters,
                    "responses": {"200": ok, **more, **problems(*READ)}}}


USER, EXERCISE = param("user"), param("exercise")
PATHS = {
    "/users/{user}/xp": reading("a learner's XP, in total and per UTC date", json_response("the XP", XP_VIEW), [USER]),
    "/users/{user}/exercises/{exercise}/attempt": reading(
        "the open attempt, else the last completed one", json_response("the attempt", ATTEMPT_VIEW),
        [USER, EXERCISE], **{"404": json_response("no attempt of this exercise yet", NO_ATTEMPT)}),
    "/users/{user}/exercises/{exercise}/explain": reading(
        "why a mastery banked what it banked", json_response("the evidence", ref("Explanation")), [USER, EXERCISE]),
    "/healthz": {"get": {"summary": "readiness", "security": [], "responses": {
        "200": json_response("ready", READINESS), "503": json_response("not ready", READINESS)}}},
    "/metrics": {"get": {"summary": "Prometheus text (the operations scope, or XPBANK_METRICS_PUBLIC=1)",
                         "security": AUTH, "responses": {"200": text_response("the metrics", "text/plain"),
                                                         **problems(401, 403)}}},
    "/openapi.json": {"get": {"summary": "this description", "security": [],
                              "responses": {"200": json_response("OpenAPI 3.1", {"type": "object"})}}},
    "/ui": {"get": {"summary": "to /ui/", "security": [], "responses": {"303": SEE_OTHER}}},
    "/ui/": page("the live overview (operations scope)"),
    "/ui/login": {
        "get": {"summary": "the login form", "security": [], "responses": {"200": HTML}},
        "post": {"summary": "log in: the cookie, then to `next`", "security": [],
                 "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
                     "type": "object", "properties": {"token": {"type": "string"}, "next": {"type": "string"}}}}}},
                 "responses": {"303": SEE_OTHER, **problems(400, 403, 408, 413)}},
    },
    "/ui/logout": {"post": {"summary": "log out (drops the cookie)", "security": [], "responses": {"303": SEE_OTHER}}},
    "/ui/learners": page("the learner search (learners scope)"),
    "/ui/learners/": page("the learner search (learners scope)"),
    "/ui/learners/{user}": {"get": {**page("a learner's page (learners scope)")["get"], "parameters": [USER]}},
    "/ui/api/overview": {"get": {"summary": "the overview's figures", "security": AUTH, "responses": {
        "200": json_response("the figures", {"type": "object"}), **problems(*READ)}}},
    "/ui/api/events": {"get": {"summary": "the overview as server-sent events (an endless stream)",
                               "security": AUTH, "responses": {"200": text_response("events", "text/event-stream"),
                                                               **problems(*READ)}}},
    "/ui/api/learners/{user}": reading(
        "everything the read models hold about a learner", json_response("the learner", {"type": "object"}), [USER],
        **problems(404)),
    "/ui/static/{filename}": {"get": {"summary": "the page's scripts and styles", "security": [],
                                      "parameters": [param("filename")],
                                      "responses": {"200": {"description": "the file", "content": {
                                          "text/css": {"schema": {"type": "string"}},
                                          "text/javascript": {"schema": {"type": "string"}}}},
                                          **problems(404)}}},
}
DESCRIPTION = document(
    "xpbank API", "Learners' XP, attempts and banking evidence from the read models, and the web page "
                  "(docs/ui.md); every route but /healthz, /openapi.json, the login form and the page's files "
                  "needs a bearer token or the page's cookie.", PATHS,
    model_schemas({"Explanation": Explanation}, mode="serialization"),
    {"bearer": BEARER, "cookie": {"type": "apiKey", "in": "cookie", "name": "xpbank_token"}})
