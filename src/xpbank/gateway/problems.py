"""RFC 7807 problem documents: every 4xx and 5xx of the gateway names its cause."""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus

import orjson

PROBLEM_JSON = "application/problem+json"


@dataclass
class Refused(Exception):
    """A request the gateway answers with `status` and a problem document."""

    status: int
    detail: str
    extra: dict = field(default_factory=dict)  # e.g. "errors": the reasons of a 422
    headers: dict = field(default_factory=dict)  # e.g. Retry-After on a 503

    def __str__(self) -> str:
        return f"{self.status} {self.detail}"

    def document(self) -> dict:
        return {"type": "about:blank", "title": HTTPStatus(self.status).phrase, "status": self.status,
                "detail": self.detail, **self.extra}

    def body(self) -> bytes:
        return orjson.dumps(self.document())
