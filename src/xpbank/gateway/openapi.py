"""The gateway's OpenAPI 3.1 description (`GET /openapi.json`); tests keep it equal to the
routes (test_openapi.py) and fuzz the live gateway against it (Schemathesis)."""

from __future__ import annotations

from xpbank.contract.events import CourseUpserted, ExerciseMastered, Submission, TimeSpentEvent
from xpbank.contract.identifiers import MAX_EVENTS_PER_ENVELOPE
from xpbank.web.openapi import BEARER, document, json_response, model_schemas, problems, ref, text_response

DATA_VERSIONS = ["http://purl.imsglobal.org/ctx/caliper/v1p2", "http://purl.imsglobal.org/ctx/caliper/v1p1"]
SENDING = (400, 401, 403, 408, 413, 415, 422, 429, 503)  # what a request with a body may be answered

ENVELOPE = {
    "type": "object", "additionalProperties": False, "required": ["sensor", "sendTime", "dataVersion", "data"],
    "description": "IMS Caliper 1.2 §5.2 envelope; each event goes on as it came (TimeSpentEvent is what xpbank uses)",
    "properties": {
        "sensor": {"type": "string", "minLength": 1, "maxLength": 512},
        "sendTime": {"type": "string", "format": "date-time"},
        "dataVersion": {"enum": DATA_VERSIONS},
        "data": {"type": "array", "minItems": 1, "maxItems": MAX_EVENTS_PER_ENVELOPE,
                 "items": {"anyOf": [ref("TimeSpentEvent"), {"type": "object"}]}},
    },
}
ACCEPTED = json_response("every record acknowledged by the broker", {
    "type": "object", "required": ["accepted"], "properties": {"accepted": {"type": "integer", "minimum": 1}}})


def one_or_many(name: str) -> dict:
    return {"content": {"application/json": {"schema": {
        "oneOf": [ref(name), {"type": "array", "minItems": 1, "items": ref(name)}]}}}, "required": True}


def sending(summary: str, body: dict | None, ok: dict, parameters: list | None = None) -> dict:
    operation = {"summary": summary, "security": [{"bearer": []}], "responses": {"200": ok, **problems(*SENDING)}}
    if body is not None:
        operation["requestBody"] = body
    if parameters:
        operation["parameters"] = parameters
    return operation


COURSE = [{"name": "course", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}]
PATHS = {
    "/caliper/v1p2": {
        "post": sending("a Caliper envelope, one record per learner on learning.caliper.v1",
                        {"required": True, "content": {"application/json": {"schema": ref("CaliperEnvelope")}}},
                        {"description": "every record acknowledged (IMS §6.1: an empty body)"}),
        "get": {"summary": "IMS Caliper 1.2 §6.2 endpoint configuration", "security": [{"bearer": []}],
                "responses": {"200": json_response("the configuration", {
                    "type": "object", "required": ["caliperMaximumPayloadSize", "caliperSupportedVersions"],
                    "properties": {"caliperMaximumPayloadSize": {"type": "integer"},
                                   "caliperSupportedVersions": {"type": "array", "items": {"type": "string"}},
                                   "caliperSupportedExtensions": {"type": "object"}}}),
                              **problems(401, 403)}},
    },
    "/v1/submissions": {"post": sending("submissions onto learning.submissions.v1", one_or_many("Submission"),
                                        ACCEPTED)},
    "/v1/masteries": {"post": sending("masteries onto learning.mastery.v1", one_or_many("ExerciseMastered"),
                                      ACCEPTED)},
    "/v1/courses/{course}": {
        "put": sending("a course onto learning.curriculum.v1, keyed by it",
                       {"required": True, "content": {"application/json": {"schema": ref("CourseUpserted")}}},
                       ACCEPTED, COURSE),
        "delete": {"summary": "a tombstone of the course", "parameters": COURSE, "security": [{"bearer": []}],
                   "responses": {"200": ACCEPTED, **problems(401, 403, 422, 429, 503)}},
    },
    "/healthz": {"get": {"summary": "200 while the broker answers", "security": [], "responses": {
        "200": json_response("the broker answers", {"type": "object", "required": ["broker", "bufferedBytes"],
                                                    "properties": {"broker": {"const": "reachable"},
                                                                   "bufferedBytes": {"type": "integer"}}}),
        **problems(503)}}},
    "/metrics": {"get": {"summary": "Prometheus text (an XPBANK_API_TOKENS token with the operations scope)",
                         "security": [{"bearer": []}],
                         "responses": {"200": text_response("the metrics", "text/plain"), **problems(401)}}},
    "/openapi.json": {"get": {"summary": "this description", "security": [],
                              "responses": {"200": json_response("OpenAPI 3.1", {"type": "object"})}}},
}
DESCRIPTION = document(
    "xpbank gateway", "Learning apps and Caliper sensors send events over HTTP (docs/gateway.md).", PATHS,
    {**model_schemas({"TimeSpentEvent": TimeSpentEvent, "Submission": Submission,
                      "ExerciseMastered": ExerciseMastered, "CourseUpserted": CourseUpserted}),
     "CaliperEnvelope": ENVELOPE},
    {"bearer": BEARER})
