"""Configuration from the environment (SPEC §6). Every variable has a default that
works on a developer machine; a bad value fails fast with the variable's name."""

from __future__ import annotations

import logging
import os
import re
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from xpbank.core.rules import Rules

DEFAULTS: dict[str, str] = {
    "XPBANK_BROKER": "kafka://127.0.0.1:9092",
    "XPBANK_REDIS_URL": "redis://127.0.0.1:6379/0",
    "XPBANK_STORE": "rocksdb://",
    "XPBANK_PARTITIONS": "8",
    "XPBANK_REPLICATION_FACTOR": "1",
    "XPBANK_TOPIC_PREFIX": "",
    "XPBANK_LATENESS_SECONDS": "3600",
    "XPBANK_MAX_CLOCK_SKEW_SECONDS": "300",
    "XPBANK_MAX_UNANCHORED_SECONDS": "60",
    "XPBANK_MAX_PAYLOAD_BYTES": "262144",
    "XPBANK_GENERATION": "1",
    "XPBANK_WEB_PORT": "6066",
    "XPBANK_DATA_DIR": "./data",
    "XPBANK_INSTANCE_ID": "",
    "XPBANK_SESSION_TIMEOUT_SECONDS": "10",
    "XPBANK_PROJECTOR": "1",
    "XPBANK_PROJECTOR_PORT": "6067",
    "XPBANK_REDIS_PREFIX": "xpbank:",
    "XPBANK_FRAMEWORK_LOGLEVEL": "WARNING",
    "XPBANK_OUTPUT_RETENTION_DAYS": "-1",
    "XPBANK_ALLOW_FINITE_RETENTION": "0",
    "XPBANK_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
    "XPBANK_KAFKA_SASL_MECHANISM": "PLAIN",
    "XPBANK_KAFKA_USERNAME": "",
    "XPBANK_KAFKA_PASSWORD": "",
    "XPBANK_KAFKA_CA_FILE": "",
    "XPBANK_KAFKA_CERT_FILE": "",
    "XPBANK_KAFKA_KEY_FILE": "",
    "XPBANK_REDIS_CA_FILE": "",
    "XPBANK_API_TOKENS": "",
    "XPBANK_METRICS_PUBLIC": "0",
    "XPBANK_ENGINE": "faust",
    "XPBANK_PROCESSING_GUARANTEE": "at-least-once",
    "XPBANK_GATEWAY_PORT": "6070",
    "XPBANK_GATEWAY_TOKENS": "",
    "XPBANK_GATEWAY_TOKENS_FILE": "",
    "XPBANK_GATEWAY_BUFFER_BYTES": "33554432",
    "XPBANK_GATEWAY_ACK_TIMEOUT_SECONDS": "10",
    "XPBANK_MAX_ID_LENGTH": "512",
    "XPBANK_MAX_EVENTS_PER_ENVELOPE": "1000",
    "XPBANK_HTTP_HEADER_TIMEOUT_SECONDS": "10",
    "XPBANK_HTTP_BODY_MIN_BYTES_PER_SECOND": "16384",
    "XPBANK_GATEWAY_READS_PER_TOKEN": "16",
    "XPBANK_GATEWAY_TOKEN_REQUESTS_PER_SECOND": "1000",
    "XPBANK_GATEWAY_TOKEN_BYTES_PER_SECOND": "16777216",
    "XPBANK_UI_MAX_STREAMS": "32",
    # the write-back sinks (SPEC §3.7, docs/write-back.md)
    "XPBANK_ONEROSTER_URL": "",
    "XPBANK_ONEROSTER_KINDS": "banked",
    "XPBANK_ONEROSTER_LINE_ITEM_ID": "{resource}",
    "XPBANK_ONEROSTER_RESULT_ID": "",
    "XPBANK_ONEROSTER_EXERCISE_RESULT_ID": "",
    "XPBANK_ONEROSTER_TOKEN": "",
    "XPBANK_ONEROSTER_TOKEN_URL": "",
    "XPBANK_ONEROSTER_CLIENT_ID": "",
    "XPBANK_ONEROSTER_CLIENT_SECRET": "",
    "XPBANK_ONEROSTER_RATE": "0",
    "XPBANK_ONEROSTER_CONCURRENCY": "8",
    "XPBANK_ONEROSTER_SINK_PORT": "6071",
    "XPBANK_CALIPER_SINK_URL": "",
    "XPBANK_CALIPER_SINK_TOKEN": "",
    "XPBANK_CALIPER_SINK_TOKEN_URL": "",
    "XPBANK_CALIPER_SINK_CLIENT_ID": "",
    "XPBANK_CALIPER_SINK_CLIENT_SECRET": "",
    "XPBANK_CALIPER_ACTOR_ID": "",
    "XPBANK_CALIPER_ACTIVITY_ID": "urn:xpbank:resources:{resource}",
    "XPBANK_CALIPER_SENSOR": "urn:xpbank:sinks:caliper",
    "XPBANK_CALIPER_BATCH_SIZE": "100",
    "XPBANK_CALIPER_RATE": "0",
    "XPBANK_CALIPER_CONCURRENCY": "4",
    "XPBANK_CALIPER_SINK_PORT": "6072",
    "XPBANK_SINK_TIMEOUT_SECONDS": "30",
    "XPBANK_SINK_BACKOFF_MAX_SECONDS": "60",
}

# Secrets may also come from a file (`NAME_FILE`, e.g. a mounted Kubernetes Secret).
SECRETS = ("XPBANK_KAFKA_USERNAME", "XPBANK_KAFKA_PASSWORD", "XPBANK_REDIS_URL", "XPBANK_API_TOKENS",
           "XPBANK_ONEROSTER_TOKEN", "XPBANK_ONEROSTER_CLIENT_ID", "XPBANK_ONEROSTER_CLIENT_SECRET",
           "XPBANK_CALIPER_SINK_TOKEN", "XPBANK_CALIPER_SINK_CLIENT_ID", "XPBANK_CALIPER_SINK_CLIENT_SECRET")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
ENGINES = ("faust", "quix")
GUARANTEES = ("at-least-once", "exactly-once")
MIN_TOKEN_LENGTH = 32  # every bearer token (API, web page, gateway): not guessable over the network

DESCRIPTIONS: dict[str, str] = {  # docs/configuration.md's table (markdown_table)
    "XPBANK_BROKER": "Kafka bootstrap server(s), `kafka://host:port` (several: `;`)",
    "XPBANK_REDIS_URL": "Redis for the read models",
    "XPBANK_STORE": "table store: `rocksdb://` or `memory://`",
    "XPBANK_PARTITIONS": "partitions of every topic xpbank creates",
    "XPBANK_REPLICATION_FACTOR": "replicas of every topic and changelog xpbank creates",
    "XPBANK_TOPIC_PREFIX": "prefix of every topic name",
    "XPBANK_LATENESS_SECONDS": "TimeSpent older than watermark minus this is `too_late`",
    "XPBANK_MAX_CLOCK_SKEW_SECONDS": "eventTime this far past the record timestamp is `future_event_time`",
    "XPBANK_MAX_UNANCHORED_SECONDS": "credit cap of a time item without startDate/endDate",
    "XPBANK_MAX_PAYLOAD_BYTES": "larger records are `payload_too_large`",
    "XPBANK_GENERATION": "generation stamped on outputs (replays use a new one)",
    "XPBANK_WEB_PORT": "the worker's HTTP port",
    "XPBANK_DATA_DIR": "where a worker keeps its table stores",
    "XPBANK_INSTANCE_ID": "stable worker name (static group member), e.g. the pod name",
    "XPBANK_SESSION_TIMEOUT_SECONDS": "a worker away this long loses its partitions; a static member back sooner keeps them (no rebalance)",
    "XPBANK_PROJECTOR": "`1`: the worker runs the projector; `0` with `xpbank projector` apart",
    "XPBANK_PROJECTOR_PORT": "`/healthz` and `/metrics` of `xpbank projector` on its own",
    "XPBANK_REDIS_PREFIX": "prefix of every Redis key",
    "XPBANK_FRAMEWORK_LOGLEVEL": "log level of Faust, aiokafka, aiohttp (`INFO` shows rebalances)",
    "XPBANK_OUTPUT_RETENTION_DAYS": "days the banked, attempts and dead-letter topics keep (`-1`: for ever)",
    "XPBANK_ALLOW_FINITE_RETENTION": "`1`: start although an input topic deletes records (warns hourly)",
    "XPBANK_KAFKA_SECURITY_PROTOCOL": "`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`",
    "XPBANK_KAFKA_SASL_MECHANISM": "`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`",
    "XPBANK_KAFKA_USERNAME": "SASL user (or `_FILE`)",
    "XPBANK_KAFKA_PASSWORD": "SASL password (or `_FILE`); never logged",
    "XPBANK_KAFKA_CA_FILE": "PEM CA that signed the brokers' certificates",
    "XPBANK_KAFKA_CERT_FILE": "PEM client certificate (mutual TLS)",
    "XPBANK_KAFKA_KEY_FILE": "PEM key of the client certificate",
    "XPBANK_REDIS_CA_FILE": "PEM CA for `rediss://` (TLS) Redis URLs",
    "XPBANK_API_TOKENS": "API bearer tokens, comma-separated (or `_FILE`, with scopes)",
    "XPBANK_METRICS_PUBLIC": "`1`: `/metrics` answers without a token",
    "XPBANK_ENGINE": "stream engine of `worker` and `replay`: `faust` or `quix`",
    "XPBANK_PROCESSING_GUARANTEE": "`at-least-once`, or `exactly-once` (quix: transactional outputs)",
    "XPBANK_GATEWAY_PORT": "the HTTP port of `xpbank gateway`",
    "XPBANK_GATEWAY_TOKENS": "gateway bearer tokens that may send everything, comma-separated; never logged",
    "XPBANK_GATEWAY_TOKENS_FILE": "JSON file of gateway tokens limited to kinds and a sensor",
    "XPBANK_GATEWAY_BUFFER_BYTES": "bytes of records (keys and values) the gateway holds until the broker acknowledges them; past it: 503",
    "XPBANK_GATEWAY_ACK_TIMEOUT_SECONDS": "the gateway answers 503 when the broker has not acknowledged by then",
    "XPBANK_MAX_ID_LENGTH": "longer ids, or ids with control characters, are `schema_violation` (gateway: 422; SPEC §2.5)",
    "XPBANK_MAX_EVENTS_PER_ENVELOPE": "larger envelopes are `schema_violation` (gateway: 413, also for arrays)",
    "XPBANK_HTTP_HEADER_TIMEOUT_SECONDS": "both HTTP servers: a request head arrives within this from its first byte, else 408 and closed",
    "XPBANK_HTTP_BODY_MIN_BYTES_PER_SECOND": "both HTTP servers: a slower body (after the header timeout's grace) is answered 408",
    "XPBANK_GATEWAY_READS_PER_TOKEN": "bodies one gateway token uploads at once; past it: 429",
    "XPBANK_GATEWAY_TOKEN_REQUESTS_PER_SECOND": "requests per second per gateway token (a token bucket); past it: 429",
    "XPBANK_GATEWAY_TOKEN_BYTES_PER_SECOND": "body bytes per second per gateway token; past it: 429",
    "XPBANK_UI_MAX_STREAMS": "live-page event streams one API process serves at once; past it: 503",
    "XPBANK_ONEROSTER_URL": "base URL of the OneRoster 1.2 API (`xpbank sink oneroster` needs it)",
    "XPBANK_ONEROSTER_KINDS": "facts written as results: `banked`, or `banked,exercise`",
    "XPBANK_ONEROSTER_LINE_ITEM_ID": "line item sourcedId over `{resource}` (replaced system: `{resource}_ali`)",
    "XPBANK_ONEROSTER_RESULT_ID": "banked result sourcedId over `{user}`, `{resource}`, `{lineItem}`; empty: uuid5 of the factId",
    "XPBANK_ONEROSTER_EXERCISE_RESULT_ID": "exercise result sourcedId, the same plus `{attempt}`; empty: uuid5 of the factId",
    "XPBANK_ONEROSTER_TOKEN": "bearer token of the OneRoster API (or `_FILE`); never logged",
    "XPBANK_ONEROSTER_TOKEN_URL": "OAuth2 token endpoint (client credentials) instead of a token",
    "XPBANK_ONEROSTER_CLIENT_ID": "OAuth2 client id (or `_FILE`)",
    "XPBANK_ONEROSTER_CLIENT_SECRET": "OAuth2 client secret (or `_FILE`); never logged",
    "XPBANK_ONEROSTER_RATE": "requests per second at most (`0`: no limit)",
    "XPBANK_ONEROSTER_CONCURRENCY": "requests in flight at most (one per result at a time)",
    "XPBANK_ONEROSTER_SINK_PORT": "`/metrics` and `/healthz` of `xpbank sink oneroster`",
    "XPBANK_CALIPER_SINK_URL": "URL the Caliper envelopes are POSTed to (`xpbank sink caliper` needs it)",
    "XPBANK_CALIPER_SINK_TOKEN": "bearer token of the events API (or `_FILE`); never logged",
    "XPBANK_CALIPER_SINK_TOKEN_URL": "OAuth2 token endpoint (client credentials) instead of a token",
    "XPBANK_CALIPER_SINK_CLIENT_ID": "OAuth2 client id (or `_FILE`)",
    "XPBANK_CALIPER_SINK_CLIENT_SECRET": "OAuth2 client secret (or `_FILE`); never logged",
    "XPBANK_CALIPER_ACTOR_ID": "actor IRI over `{user}`; empty: `XPBANK_ONEROSTER_URL` + `/ims/oneroster/rostering/v1p2/users/{user}`",
    "XPBANK_CALIPER_ACTIVITY_ID": "the activity's IRI over `{resource}`",
    "XPBANK_CALIPER_SENSOR": "the envelopes' `sensor` IRI",
    "XPBANK_CALIPER_BATCH_SIZE": "events per envelope at most",
    "XPBANK_CALIPER_RATE": "requests per second at most (`0`: no limit)",
    "XPBANK_CALIPER_CONCURRENCY": "envelopes in flight at most",
    "XPBANK_CALIPER_SINK_PORT": "`/metrics` and `/healthz` of `xpbank sink caliper`",
    "XPBANK_SINK_TIMEOUT_SECONDS": "a sink's request without an answer by then is retried",
    "XPBANK_SINK_BACKOFF_MAX_SECONDS": "longest wait between two retries (a `Retry-After` is honoured up to an hour)",
}

SINK_SETTINGS = ("XPBANK_ONEROSTER_", "XPBANK_CALIPER_", "XPBANK_SINK_")  # also tabled in docs/write-back.md


def markdown_table(prefixes: tuple[str, ...] = ()) -> str:
    """docs/configuration.md's table, or the rows of the names starting with `prefixes`
    (docs/write-back.md's); a unit test keeps them equal."""
    return "| variable | default | meaning |\n|---|---|---|\n" + "".join(
        f"| `{name}` | `{DEFAULTS[name] or '(empty)'}` | {DESCRIPTIONS[name]} |\n" for name in DEFAULTS
        if not prefixes or name.startswith(prefixes))


class ConfigError(ValueError):
    """A configuration variable has a value that cannot be used."""


class Secret:
    """A value that must not reach a log line, an error message or /metrics: its repr and
    str are masked; `reveal()` gives it to the one client that needs it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)" if self._value else "Secret()"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _text(env: Mapping[str, str], name: str) -> str:
    """A variable that may also be given as `NAME_FILE` (the file's content, trimmed)."""
    direct, path = env.get(name), env.get(f"{name}_FILE")
    if direct and path:
        raise ConfigError(f"{name} and {name}_FILE are both set: use one")
    if path:
        try:
            text = Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE={path!r} cannot be read ({exc.strerror})") from None
        warn_if_shared(f"{name}_FILE", path)
        return text
    return direct if direct is not None else DEFAULTS[name]


_WARNED: set[tuple[str, str]] = set()


def warn_if_shared(name: str, path: str) -> None:
    """Warn (once per process) when a secret's file may be read by its group or others."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and (name, path) not in _WARNED:
        _WARNED.add((name, path))
        logging.getLogger("xpbank.config").warning(
            "%s=%s can be read by its group or others (mode %s): chmod 600 it", name, path, oct(mode & 0o777))


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = (env.get(name) or DEFAULTS[name]).strip().upper()
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: use one of {', '.join(choices)}")
    return value


def _readable(env: Mapping[str, str], name: str) -> str:
    path = env.get(name) or DEFAULTS[name]
    if path and not os.access(path, os.R_OK):
        raise ConfigError(f"{name}={path!r} is not a readable file")
    return path


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
            protocol=_choice(env, "XPBANK_KAFKA_SECURITY_PROTOCOL", SECURITY_PROTOCOLS),
            mechanism=_choice(env, "XPBANK_KAFKA_SASL_MECHANISM", SASL_MECHANISMS),
            username=_text(env, "XPBANK_KAFKA_USERNAME"),
            password=Secret(_text(env, "XPBANK_KAFKA_PASSWORD")),
            ca_file=_readable(env, "XPBANK_KAFKA_CA_FILE"),
            cert_file=_readable(env, "XPBANK_KAFKA_CERT_FILE"),
            key_file=_readable(env, "XPBANK_KAFKA_KEY_FILE"),
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


def _int(env: Mapping[str, str], name: str, minimum: int = 0) -> int:
    raw = env.get(name) or DEFAULTS[name]
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def _retention_days(env: Mapping[str, str], name: str) -> int:
    value = _int(env, name, minimum=-1)
    if value == 0:
        raise ConfigError(f"{name}=0 would delete records at once: use a number of days, or -1 for ever")
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or DEFAULTS[name]).strip().lower()
    if raw not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
        raise ConfigError(f"{name}={raw!r}: use 1 or 0")
    return raw in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    broker: str
    store: str
    partitions: int
    topic_prefix: str
    web_port: int
    data_dir: Path
    rules: Rules
    instance_id: str = ""
    session_timeout_seconds: int = 10
    replication_factor: int = 1
    projector: bool = True
    projector_port: int = 6067
    redis_prefix: str = "xpbank:"
    output_retention_days: int = -1
    allow_finite_retention: bool = False
    kafka: KafkaSecurity = KafkaSecurity()
    redis_secret_url: Secret = Secret("")
    redis_ca_file: str = ""
    api_tokens: ApiTokens = ApiTokens()
    api_tokens_file: str = ""  # read again when it changes (read.auth.current_tokens)
    metrics_public: bool = False
    engine: str = "faust"
    processing_guarantee: str = "at-least-once"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        store = env.get("XPBANK_STORE") or DEFAULTS["XPBANK_STORE"]
        if not store.startswith(("rocksdb://", "memory://")):
            raise ConfigError(f"XPBANK_STORE={store!r}: use rocksdb:// or memory://")
        engine = (env.get("XPBANK_ENGINE") or DEFAULTS["XPBANK_ENGINE"]).strip().lower()
        guarantee = (env.get("XPBANK_PROCESSING_GUARANTEE") or DEFAULTS["XPBANK_PROCESSING_GUARANTEE"]).strip().lower()
        if engine not in ENGINES:
            raise ConfigError(f"XPBANK_ENGINE={engine!r}: use one of {', '.join(ENGINES)}")
        if guarantee not in GUARANTEES:
            raise ConfigError(f"XPBANK_PROCESSING_GUARANTEE={guarantee!r}: use one of {', '.join(GUARANTEES)}")
        if engine == "faust" and guarantee == "exactly-once":
            raise ConfigError("XPBANK_PROCESSING_GUARANTEE=exactly-once needs XPBANK_ENGINE=quix "
                              "(Faust's exactly-once has open duplicate and crash reports: docs/decisions.md)")
        redis_url = _text(env, "XPBANK_REDIS_URL") or DEFAULTS["XPBANK_REDIS_URL"]
        redis_ca = _readable(env, "XPBANK_REDIS_CA_FILE")
        if redis_ca and not redis_url.startswith("rediss://"):
            raise ConfigError("XPBANK_REDIS_CA_FILE needs a rediss:// (TLS) XPBANK_REDIS_URL")
        return cls(
            broker=env.get("XPBANK_BROKER") or DEFAULTS["XPBANK_BROKER"],
            redis_secret_url=Secret(redis_url),
            redis_ca_file=redis_ca,
            kafka=KafkaSecurity.from_env(env),
            api_tokens=ApiTokens.parse(_text(env, "XPBANK_API_TOKENS"),
                                       "XPBANK_API_TOKENS_FILE" if env.get("XPBANK_API_TOKENS_FILE") else "XPBANK_API_TOKENS"),
            api_tokens_file=env.get("XPBANK_API_TOKENS_FILE") or "",
            metrics_public=_flag(env, "XPBANK_METRICS_PUBLIC"),
            engine=engine,
            processing_guarantee=guarantee,
            store=store,
            partitions=_int(env, "XPBANK_PARTITIONS", minimum=1),
            topic_prefix=env.get("XPBANK_TOPIC_PREFIX", DEFAULTS["XPBANK_TOPIC_PREFIX"]),
            web_port=_int(env, "XPBANK_WEB_PORT", minimum=1),
            data_dir=Path(env.get("XPBANK_DATA_DIR") or DEFAULTS["XPBANK_DATA_DIR"]),
            instance_id=env.get("XPBANK_INSTANCE_ID", ""),
            session_timeout_seconds=_int(env, "XPBANK_SESSION_TIMEOUT_SECONDS", minimum=6),  # the broker's minimum
            replication_factor=_int(env, "XPBANK_REPLICATION_FACTOR", minimum=1),
            projector=_flag(env, "XPBANK_PROJECTOR"),
            projector_port=_int(env, "XPBANK_PROJECTOR_PORT", minimum=1),
            redis_prefix=env.get("XPBANK_REDIS_PREFIX", DEFAULTS["XPBANK_REDIS_PREFIX"]),
            output_retention_days=_retention_days(env, "XPBANK_OUTPUT_RETENTION_DAYS"),
            allow_finite_retention=_flag(env, "XPBANK_ALLOW_FINITE_RETENTION"),
            rules=Rules(
                lateness_seconds=_int(env, "XPBANK_LATENESS_SECONDS"),
                max_clock_skew_seconds=_int(env, "XPBANK_MAX_CLOCK_SKEW_SECONDS"),
                max_unanchored_seconds=_int(env, "XPBANK_MAX_UNANCHORED_SECONDS"),
                max_payload_bytes=_int(env, "XPBANK_MAX_PAYLOAD_BYTES", minimum=1),
                generation=_int(env, "XPBANK_GENERATION", minimum=1),
                max_id_length=_int(env, "XPBANK_MAX_ID_LENGTH", minimum=64),  # urn:uuid ids (45) fit
                max_events_per_envelope=_int(env, "XPBANK_MAX_EVENTS_PER_ENVELOPE", minimum=1),
            ),
        )

    @property
    def redis_url(self) -> str:
        """The Redis URL with its password, for the client only (see `redis_display`)."""
        return self.redis_secret_url.reveal()

    @property
    def redis_display(self) -> str:
        """The Redis URL as it may be logged: any password masked."""
        return re.sub(r"(://[^:@/]*:)[^@/]*@", r"\1***@", self.redis_url)

    @property
    def bootstrap_servers(self) -> str:
        """The broker URL(s) as aiokafka wants them (`host:port[,host:port]`)."""
        return ",".join(part.split("://", 1)[-1] for part in self.broker.split(";"))


if __name__ == "__main__":  # the table of docs/configuration.md
    print(markdown_table(), end="")
