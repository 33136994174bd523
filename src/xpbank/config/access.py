"""Who may connect where: the Kafka clients' security, the HTTP API's bearer tokens and
their scopes, and token files read again when they change."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from xpbank.config.defaults import MIN_TOKEN_LENGTH, SASL_MECHANISMS, SECURITY_PROTOCOLS
from xpbank.config.values import ConfigError, Secret, env_choice, env_readable, env_text

@dataclass(frozen=True)
class KafkaSecurity:
    """How every Kafka client connects (one place: `xpbank.kafka.connection`)."""

    protocol: str = "PLAINTEXT"
    mechanism: str = "PLAIN"
    username: str = ""
    password: Secret = Secret("")
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KafkaSecurity:
        security = cls(
            protocol=env_choice(env, "XPBANK_KAFKA_SECURITY_PROTOCOL", SECURITY_PROTOCOLS),
            mechanism=env_choice(env, "XPBANK_KAFKA_SASL_MECHANISM", SASL_MECHANISMS),
            username=env_text(env, "XPBANK_KAFKA_USERNAME"),
            password=Secret(env_text(env, "XPBANK_KAFKA_PASSWORD")),
            ca_file=env_readable(env, "XPBANK_KAFKA_CA_FILE"),
            cert_file=env_readable(env, "XPBANK_KAFKA_CERT_FILE"),
            key_file=env_readable(env, "XPBANK_KAFKA_KEY_FILE"),
        )
        if security.sasl and not (security.username and security.password):
            raise ConfigError(f"XPBANK_KAFKA_SECURITY_PROTOCOL={security.protocol} needs XPBANK_KAFKA_USERNAME "
                              "and XPBANK_KAFKA_PASSWORD (or their _FILE variants)")
        if bool(security.cert_file) != bool(security.key_file):
            raise ConfigError("XPBANK_KAFKA_CERT_FILE and XPBANK_KAFKA_KEY_FILE go together")
        if not security.tls and (security.ca_file or security.cert_file):
            raise ConfigError(f"XPBANK_KAFKA_CA_FILE / _CERT_FILE need a TLS protocol (SSL or SASL_SSL), "
                              f"not {security.protocol}")
        return security


SCOPES = ("learners", "operations")  # per-learner answers; metrics and the operations views


@dataclass(frozen=True)
class ApiTokens:
    """Bearer tokens of the HTTP API and the scopes each grants (tokens never printed)."""

    scopes: tuple[tuple[Secret, str, frozenset[str]], ...] = ()  # (token, name, scopes)

    def __repr__(self) -> str:
        return f"ApiTokens({len(self.scopes)} tokens)"

    def __len__(self) -> int:
        return len(self.scopes)

    @classmethod
    def parse(cls, text: str, name: str = "XPBANK_API_TOKENS") -> ApiTokens:
        """Comma-separated tokens (every scope), or a JSON object
        `{"<token>": {"name": "...", "scopes": ["learners", "operations"]}}`."""
        text = text.strip()
        if not text:
            return cls()
        if text.startswith("{"):
            import json

            try:
                doc = json.loads(text)
            except ValueError:
                raise ConfigError(f"{name}: not a JSON object of tokens") from None
            entries = []
            for n, (token, spec) in enumerate(doc.items(), 1):
                granted = frozenset(spec.get("scopes", SCOPES)) if isinstance(spec, dict) else frozenset()
                if not granted or not granted <= set(SCOPES):
                    raise ConfigError(f"{name}: token {n} needs scopes among {', '.join(SCOPES)}")
                entries.append((Secret(token), str(spec.get("name", f"token-{n}")), granted))
        else:
            tokens = [t.strip() for t in text.split(",") if t.strip()]
            entries = [(Secret(t), f"token-{n}", frozenset(SCOPES)) for n, t in enumerate(tokens, 1)]
        for token, token_name, _ in entries:
            if len(token.reveal()) < MIN_TOKEN_LENGTH:
                raise ConfigError(f"{name}: token {token_name} is shorter than {MIN_TOKEN_LENGTH} characters "
                                  "(guessable; make one with: openssl rand -hex 24)")
        return cls(tuple(entries))

    @classmethod
    def reread(cls, text: str) -> ApiTokens:
        """XPBANK_API_TOKENS_FILE's new content; none left would lock everyone out, so
        it is refused (a half-written file, most likely)."""
        tokens = cls.parse(text, "XPBANK_API_TOKENS_FILE")
        if not tokens.scopes:
            raise ConfigError("XPBANK_API_TOKENS_FILE holds no token")
        return tokens


T = TypeVar("T")


class Rereadable(Generic[T]):
    """A file's parsed content, parsed again once the file's content changed (looked at
    no more than once every `every` seconds; token files are small): tokens rotate
    without a restart, a Kubernetes Secret's atomic symlink swap included. A content that
    `parse` refuses (ConfigError), or a file gone, keeps the last good value: logged
    with the variable's name, never the content."""

    def __init__(self, path: str, parse: Callable[[str], T], variable: str, value: T, every: float = 1.0) -> None:
        self.path, self.parse, self.variable, self.value, self.every = path, parse, variable, value, every
        self._seen, self._looked = self._content(), time.monotonic()

    def _content(self) -> bytes | None:
        try:
            return Path(self.path).read_bytes()
        except OSError:
            return None

    def get(self) -> T:
        now = time.monotonic()
        if now - self._looked < self.every:
            return self.value
        self._looked, content = now, self._content()
        if content is None or content == self._seen:
            return self.value
        self._seen = content
        try:
            self.value = self.parse(content.decode("utf-8", "replace"))
        except ConfigError as exc:
            logging.getLogger("xpbank").warning("%s changed but is not used (%s): the tokens before stay", self.variable, exc)
        else:
            logging.getLogger("xpbank").info("%s read again", self.variable)
        return self.value
