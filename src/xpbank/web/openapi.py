"""Pieces of the OpenAPI 3.1 descriptions both servers serve at `/openapi.json`: the
problem document, responses by status, model schemas from the contract, and the routes
an aiohttp app really has (a test keeps a description equal to them)."""

from __future__ import annotations

from http import HTTPStatus

from aiohttp import web
from pydantic import TypeAdapter

REF = "#/components/schemas/{model}"
PROBLEM = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}},
    "description": "RFC 7807 problem document; `detail` names the cause",
}
BEARER = {"type": "http", "scheme": "bearer"}
HEADERS = {  # headers some refusals always carry
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "required": False}},
    429: {"Retry-After": {"schema": {"type": "string"}, "required": True}},
    503: {"Retry-After": {"schema": {"type": "string"}, "required": False}},
}


def problems(*statuses: int) -> dict:
    """Responses for refusals: each a problem document."""
    return {str(status): {"description": HTTPStatus(status).phrase, "headers": HEADERS.get(status, {}),
                          "content": {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}}}
            for status in statuses}


def json_response(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def text_response(description: str, media: str) -> dict:
    return {"description": description, "content": {media: {"schema": {"type": "string"}}}}


def model_schemas(models: dict[str, object], mode: str = "validation") -> dict:
    """`components.schemas` for pydantic models and types (their nested models included)."""
    schemas: dict = {"Problem": PROBLEM}
    for name, model in models.items():
        schema = TypeAdapter(model).json_schema(ref_template=REF, mode=mode)
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    return schemas


def ref(name: str) -> dict:
    return {"$ref": REF.format(model=name)}


def document(title: str, description: str, paths: dict, schemas: dict, security: dict) -> dict:
    return {"openapi": "3.1.0", "info": {"title": title, "version": "1", "description": description},
            "paths": paths, "components": {"schemas": schemas, "securitySchemes": security}}


def routes_of(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route of `app` (aiohttp's automatic HEADs left out; a
    parameter's pattern left out: `{user:[^/]+}` is `{user}`). The apps have no static
    resources (a prefix would match paths no description names)."""
    found = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        found.add((route.method, path))
    return found


def paths_of(doc: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
