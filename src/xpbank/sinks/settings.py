"""The sinks' settings (`XPBANK_ONEROSTER_*`, `XPBANK_CALIPER_*`, `XPBANK_SINK_*`; defaults
in `xpbank.config.DEFAULTS`), checked at start: a template that does not name the learner
and what sets results apart, a missing URL or credentials stop the sink with the
variable's name before it reads a record."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from xpbank.config import DEFAULTS, ConfigError, Secret, Settings, env_int, env_text
from xpbank.sinks.analytics import Identity
from xpbank.sinks.gradebook import Naming, parse_kinds

ONEROSTER_USERS_PATH = "/ims/oneroster/rostering/v1p2/users/{user}"


@dataclass(frozen=True)
class Credentials:
    """A bearer token, or OAuth2 client credentials (the token is fetched and refreshed)."""

    token: Secret = Secret("")
    token_url: str = ""
    client_id: Secret = Secret("")
    client_secret: Secret = Secret("")

    @property
    def oauth2(self) -> bool:
        return bool(self.token_url)

    @classmethod
    def from_env(cls, env: Mapping[str, str], prefix: str) -> Credentials:
        found = cls(Secret(env_text(env, f"{prefix}_TOKEN")), env_text(env, f"{prefix}_TOKEN_URL"),
                    Secret(env_text(env, f"{prefix}_CLIENT_ID")), Secret(env_text(env, f"{prefix}_CLIENT_SECRET")))
        if found.token and found.token_url:
            raise ConfigError(f"{prefix}_TOKEN and {prefix}_TOKEN_URL are both set: a token, or client credentials")
        if found.token_url:
            _http_url(f"{prefix}_TOKEN_URL", found.token_url)
            if not (found.client_id and found.client_secret):
                raise ConfigError(f"{prefix}_TOKEN_URL needs {prefix}_CLIENT_ID and {prefix}_CLIENT_SECRET "
                                  "(or their _FILE variants)")
        elif not found.token:
            raise ConfigError(f"the sink needs credentials: {prefix}_TOKEN (or _FILE), or {prefix}_TOKEN_URL with "
                              f"{prefix}_CLIENT_ID and {prefix}_CLIENT_SECRET")
        return found


@dataclass(frozen=True)
class Delivery:
    """How a sink talks to its server: credentials, pace, patience."""

    credentials: Credentials
    rate: float  # requests per second at most, 0: no limit
    concurrency: int
    timeout_seconds: float
    backoff_max_seconds: float

    @classmethod
    def from_env(cls, env: Mapping[str, str], prefix: str, credentials_prefix: str) -> Delivery:
        return cls(Credentials.from_env(env, credentials_prefix), float(env_int(env, f"{prefix}_RATE")),
                   env_int(env, f"{prefix}_CONCURRENCY", 1), float(env_int(env, "XPBANK_SINK_TIMEOUT_SECONDS", 1)),
                   float(env_int(env, "XPBANK_SINK_BACKOFF_MAX_SECONDS", 1)))


@dataclass(frozen=True)
class OneRosterSettings:
    base: Settings
    url: str
    kinds: frozenset[str]
    naming: Naming
    delivery: Delivery
    port: int
    name: str = "oneroster"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OneRosterSettings:
        env = os.environ if env is None else env
        base = Settings.from_env(env)
        url = _required_url(env, "XPBANK_ONEROSTER_URL")
        naming = Naming.parse(_value(env, "XPBANK_ONEROSTER_LINE_ITEM_ID"), _value(env, "XPBANK_ONEROSTER_RESULT_ID"),
                              _value(env, "XPBANK_ONEROSTER_EXERCISE_RESULT_ID"))
        return cls(base, url, parse_kinds(_value(env, "XPBANK_ONEROSTER_KINDS")), naming,
                   Delivery.from_env(env, "XPBANK_ONEROSTER", "XPBANK_ONEROSTER"),
                   env_int(env, "XPBANK_ONEROSTER_SINK_PORT", 1))


@dataclass(frozen=True)
class CaliperSettings:
    base: Settings
    url: str
    identity: Identity
    sensor: str
    batch_size: int
    delivery: Delivery
    port: int
    name: str = "caliper"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CaliperSettings:
        env = os.environ if env is None else env
        base = Settings.from_env(env)
        url = _required_url(env, "XPBANK_CALIPER_SINK_URL")
        actor = _value(env, "XPBANK_CALIPER_ACTOR_ID")
        if not actor:
            roster = _value(env, "XPBANK_ONEROSTER_URL")
            if not roster:
                raise ConfigError("XPBANK_CALIPER_ACTOR_ID is empty and so is XPBANK_ONEROSTER_URL: set the actor's "
                                  "IRI template, e.g. https://roster.example.org/ims/oneroster/rostering/v1p2/users/{user}")
            actor = roster.rstrip("/") + ONEROSTER_USERS_PATH
        sensor = _value(env, "XPBANK_CALIPER_SENSOR")
        if ":" not in sensor:
            raise ConfigError(f"XPBANK_CALIPER_SENSOR={sensor!r}: an IRI (scheme:...)")
        return cls(base, url, Identity.parse(actor, _value(env, "XPBANK_CALIPER_ACTIVITY_ID")), sensor,
                   env_int(env, "XPBANK_CALIPER_BATCH_SIZE", 1),
                   Delivery.from_env(env, "XPBANK_CALIPER", "XPBANK_CALIPER_SINK"), env_int(env, "XPBANK_CALIPER_SINK_PORT", 1))


def _value(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    return (value if value is not None else DEFAULTS[name]).strip()


def _http_url(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name}={url!r}: an http:// or https:// URL")
    return url


def _required_url(env: Mapping[str, str], name: str) -> str:
    url = _value(env, name)
    if not url:
        raise ConfigError(f"{name} is not set: the sink needs its server's URL")
    return _http_url(name, url)
