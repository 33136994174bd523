"""The gateway's settings (`XPBANK_GATEWAY_*`, defaults in `xpbank.config.DEFAULTS`) and
its bearer tokens. A token is a `Secret`: never in a log line, an error or /metrics."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from xpbank.config import (
    DEFAULTS, MIN_TOKEN_LENGTH, ApiTokens, ConfigError, Rereadable, Secret, Settings, env_int, warn_if_shared,
)
from xpbank.web.limits import HttpLimits

KINDS = ("caliper", "submissions", "masteries", "curriculum")


@dataclass(frozen=True)
class Grant:
    """What one token may send: `kinds` (of KINDS), and only as `sensor` when set."""

    name: str
    kinds: frozenset[str]
    sensor: str | None = None


GRANT = web.RequestKey("grant", Grant)  # the request's grant, once authenticated (the access log names it)


class Tokens:
    """Bearer tokens and their grants. `grant()` compares the SHA-256 of the presented
    token with every known one in constant time (no early exit, equal lengths)."""

    def __init__(self, entries: list[tuple[Secret, Grant]]) -> None:
        self._digests = [(hashlib.sha256(token.reveal().encode()).digest(), grant) for token, grant in entries]

    def __len__(self) -> int:
        return len(self._digests)

    def __repr__(self) -> str:
        return f"Tokens({len(self._digests)} tokens)"

    def grant(self, presented: str) -> Grant | None:
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found = None
        for known, grant in self._digests:
            if hmac.compare_digest(digest, known):
                found = grant
        return found


class Rotating:
    """Tokens whose file is read again when it changes (rotation without a restart),
    with the interface of `Tokens`."""

    def __init__(self, source: Rereadable[Tokens]) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source.get())

    def __repr__(self) -> str:
        return f"Tokens({len(self)} tokens, from {self.source.variable})"

    def grant(self, presented: str) -> Grant | None:
        return self.source.get().grant(presented)


def operators_of(tokens: ApiTokens) -> Tokens:
    """The API tokens with the operations scope: they may read the gateway's /metrics."""
    return Tokens([(secret, Grant(name, frozenset())) for secret, name, scopes in tokens.scopes if "operations" in scopes])


def parse_tokens(plain: str, file_text: str | None, file_name: str = "XPBANK_GATEWAY_TOKENS_FILE") -> Tokens:
    """`plain`: comma-separated tokens that may send everything. `file_text`: a JSON object
    `{"<token>": {"name": "...", "may": [kinds], "sensor": "<IRI>"}}` (sensor optional).
    Every token has at least MIN_TOKEN_LENGTH characters."""
    entries = [(Secret(t.strip()), Grant(f"token-{n}", frozenset(KINDS)), "XPBANK_GATEWAY_TOKENS")
               for n, t in enumerate((t for t in plain.split(",") if t.strip()), 1)]
    if file_text is not None:
        try:
            doc = json.loads(file_text)
        except ValueError:
            raise ConfigError(f"{file_name}: not JSON (an object of tokens is expected)") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"{file_name}: a JSON object {{\"<token>\": {{\"may\": [...]}}}} is expected")
        entries += [(Secret(token), _grant(spec, n, file_name), file_name)
                    for n, (token, spec) in enumerate(doc.items(), 1)]
    seen: set[str] = set()
    for token, grant, origin in entries:
        if not token.reveal().strip() or token.reveal() != token.reveal().strip():
            raise ConfigError(f"{origin}: gateway token {grant.name}: empty, or with spaces around it")
        if len(token.reveal()) < MIN_TOKEN_LENGTH:
            raise ConfigError(f"{origin}: gateway token {grant.name} is shorter than {MIN_TOKEN_LENGTH} characters "
                              "(guessable; make one with: openssl rand -hex 24)")
        if token.reveal() in seen:
            raise ConfigError(f"gateway token {grant.name} is given twice")
        seen.add(token.reveal())
    return Tokens([(token, grant) for token, grant, _ in entries])


def _reread(plain: str, file_text: str) -> Tokens:
    tokens = parse_tokens(plain, file_text)
    if not len(tokens):  # none left would refuse every request: a half-written file, most likely
        raise ConfigError("XPBANK_GATEWAY_TOKENS_FILE holds no token")
    return tokens


def _grant(spec: object, n: int, file_name: str) -> Grant:
    if not isinstance(spec, dict):
        raise ConfigError(f"{file_name}: token {n} needs an object {{\"name\", \"may\", \"sensor\"}}")
    name = spec.get("name", f"file-token-{n}")
    may = spec.get("may")
    if not isinstance(may, list) or not may or not set(may) <= set(KINDS):
        raise ConfigError(f"{file_name}: token {n} ({name}) needs \"may\": a list of {', '.join(KINDS)}")
    sensor = spec.get("sensor")
    if sensor is not None and (not isinstance(sensor, str) or not sensor):
        raise ConfigError(f"{file_name}: token {n} ({name}): \"sensor\" is an IRI string, or left out")
    return Grant(str(name), frozenset(may), sensor)


@dataclass(frozen=True)
class GatewaySettings:
    base: Settings  # broker, security, topic prefix, payload limit
    port: int
    tokens: Tokens | Rotating
    buffer_bytes: int
    ack_timeout_seconds: float
    operators: Tokens | Rotating = Tokens([])  # XPBANK_API_TOKENS with the operations scope: may read /metrics
    http: HttpLimits = HttpLimits()
    reads_per_token: int = 16
    requests_per_second: int = 1000
    bytes_per_second: int = 16 * 1024 * 1024

    @property
    def max_payload_bytes(self) -> int:
        return self.base.rules.max_payload_bytes

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewaySettings:
        env = os.environ if env is None else env
        base = Settings.from_env(env)
        path = env.get("XPBANK_GATEWAY_TOKENS_FILE") or DEFAULTS["XPBANK_GATEWAY_TOKENS_FILE"]
        file_text = None
        if path:
            try:
                file_text = Path(path).read_text()
            except OSError as exc:
                raise ConfigError(f"XPBANK_GATEWAY_TOKENS_FILE={path!r} cannot be read ({exc.strerror})") from None
            warn_if_shared("XPBANK_GATEWAY_TOKENS_FILE", path)
        plain = env.get("XPBANK_GATEWAY_TOKENS") or DEFAULTS["XPBANK_GATEWAY_TOKENS"]
        tokens = parse_tokens(plain, file_text)
        if not len(tokens):
            raise ConfigError("the gateway needs tokens: set XPBANK_GATEWAY_TOKENS (comma-separated) "
                              "or XPBANK_GATEWAY_TOKENS_FILE")
        buffer_bytes = env_int(env, "XPBANK_GATEWAY_BUFFER_BYTES", 1)
        largest = 2 * base.rules.max_payload_bytes + 64 * 1024  # caliper.bound: the most one request writes
        if buffer_bytes < largest:
            raise ConfigError(f"XPBANK_GATEWAY_BUFFER_BYTES={buffer_bytes} is below {largest} (twice "
                              f"XPBANK_MAX_PAYLOAD_BYTES={base.rules.max_payload_bytes} plus 64 KiB): the records of "
                              "the largest request would never fit")
        operators = operators_of(base.api_tokens)
        if path:  # token files are read again when they change
            tokens = Rotating(Rereadable(path, lambda text: _reread(plain, text), "XPBANK_GATEWAY_TOKENS_FILE", tokens))
        if base.api_tokens_file:
            operators = Rotating(Rereadable(base.api_tokens_file, lambda text: operators_of(ApiTokens.reread(text)),
                                            "XPBANK_API_TOKENS_FILE", operators))
        return cls(base=base, port=env_int(env, "XPBANK_GATEWAY_PORT", 1), tokens=tokens, buffer_bytes=buffer_bytes,
                   ack_timeout_seconds=float(env_int(env, "XPBANK_GATEWAY_ACK_TIMEOUT_SECONDS", 1)), operators=operators,
                   http=HttpLimits.from_env(env), reads_per_token=env_int(env, "XPBANK_GATEWAY_READS_PER_TOKEN", 1),
                   requests_per_second=env_int(env, "XPBANK_GATEWAY_TOKEN_REQUESTS_PER_SECOND", 1),
                   bytes_per_second=env_int(env, "XPBANK_GATEWAY_TOKEN_BYTES_PER_SECOND", 1))

