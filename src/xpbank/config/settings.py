"""The settings of every xpbank process (SPEC §6), read from the environment at once."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from xpbank.config.access import ApiTokens, KafkaSecurity
from xpbank.config.defaults import DEFAULTS, ENGINES, GUARANTEES, LOG_LEVELS
from xpbank.config.values import (
    CLUSTER_SCHEMES, ConfigError, Secret, env_choice, env_flag, env_int, env_readable, env_retention_days, env_text, redis_cluster_nodes,
)
from xpbank.core.rules import Rules

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
    framework_loglevel: str = "WARNING"  # the client libraries' loggers (Faust, Quix, aiokafka, aiohttp)
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
        redis_url = env_text(env, "XPBANK_REDIS_URL") or DEFAULTS["XPBANK_REDIS_URL"]
        redis_ca = env_readable(env, "XPBANK_REDIS_CA_FILE")
        if redis_ca and not redis_url.startswith(("rediss://", "rediss+cluster://")):
            raise ConfigError("XPBANK_REDIS_CA_FILE needs a rediss:// (TLS) XPBANK_REDIS_URL")
        if redis_url.startswith(CLUSTER_SCHEMES):
            redis_cluster_nodes(redis_url)  # fails now, naming the variable
        return cls(
            broker=env.get("XPBANK_BROKER") or DEFAULTS["XPBANK_BROKER"],
            redis_secret_url=Secret(redis_url),
            redis_ca_file=redis_ca,
            kafka=KafkaSecurity.from_env(env),
            api_tokens=ApiTokens.parse(env_text(env, "XPBANK_API_TOKENS"),
                                       "XPBANK_API_TOKENS_FILE" if env.get("XPBANK_API_TOKENS_FILE") else "XPBANK_API_TOKENS"),
            api_tokens_file=env.get("XPBANK_API_TOKENS_FILE") or "",
            metrics_public=env_flag(env, "XPBANK_METRICS_PUBLIC"),
            engine=engine,
            processing_guarantee=guarantee,
            store=store,
            partitions=env_int(env, "XPBANK_PARTITIONS", minimum=1),
            topic_prefix=env.get("XPBANK_TOPIC_PREFIX", DEFAULTS["XPBANK_TOPIC_PREFIX"]),
            web_port=env_int(env, "XPBANK_WEB_PORT", minimum=1),
            data_dir=Path(env.get("XPBANK_DATA_DIR") or DEFAULTS["XPBANK_DATA_DIR"]),
            instance_id=env.get("XPBANK_INSTANCE_ID", ""),
            session_timeout_seconds=env_int(env, "XPBANK_SESSION_TIMEOUT_SECONDS", minimum=6),  # the broker's minimum
            replication_factor=env_int(env, "XPBANK_REPLICATION_FACTOR", minimum=1),
            projector=env_flag(env, "XPBANK_PROJECTOR"),
            projector_port=env_int(env, "XPBANK_PROJECTOR_PORT", minimum=1),
            redis_prefix=env.get("XPBANK_REDIS_PREFIX", DEFAULTS["XPBANK_REDIS_PREFIX"]),
            output_retention_days=env_retention_days(env, "XPBANK_OUTPUT_RETENTION_DAYS"),
            allow_finite_retention=env_flag(env, "XPBANK_ALLOW_FINITE_RETENTION"),
            framework_loglevel=env_choice(env, "XPBANK_FRAMEWORK_LOGLEVEL", LOG_LEVELS),
            rules=Rules(
                lateness_seconds=env_int(env, "XPBANK_LATENESS_SECONDS"),
                max_clock_skew_seconds=env_int(env, "XPBANK_MAX_CLOCK_SKEW_SECONDS"),
                max_unanchored_seconds=env_int(env, "XPBANK_MAX_UNANCHORED_SECONDS"),
                max_payload_bytes=env_int(env, "XPBANK_MAX_PAYLOAD_BYTES", minimum=1),
                generation=env_int(env, "XPBANK_GENERATION", minimum=1),
                max_id_length=env_int(env, "XPBANK_MAX_ID_LENGTH", minimum=64),  # urn:uuid ids (45) fit
                max_events_per_envelope=env_int(env, "XPBANK_MAX_EVENTS_PER_ENVELOPE", minimum=1),
            ),
        )

    @property
    def redis_url(self) -> str:
        """The Redis URL with its password, for the client only (see `redis_display`)."""
        return self.redis_secret_url.reveal()

    @property
    def redis_cluster(self) -> bool:
        """The read models are on a Redis Cluster (`redis+cluster://`, `rediss+cluster://`)."""
        return self.redis_url.startswith(CLUSTER_SCHEMES)

    @property
    def redis_display(self) -> str:
        """The Redis URL as it may be logged: any password masked."""
        return re.sub(r"(://[^:@/]*:)[^@/]*@", r"\1***@", self.redis_url)

    @property
    def bootstrap_servers(self) -> str:
        """The broker URL(s) as aiokafka wants them (`host:port[,host:port]`)."""
        return ",".join(part.split("://", 1)[-1] for part in self.broker.split(";"))
