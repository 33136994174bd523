"""Configuration from the environment (SPEC §6). Every variable has a default that
works on a developer machine; a bad value fails fast with the variable's name."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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
    "XPBANK_PROJECTOR": "1",
    "XPBANK_REDIS_PREFIX": "xpbank:",
    "XPBANK_FRAMEWORK_LOGLEVEL": "WARNING",
    "XPBANK_OUTPUT_RETENTION_DAYS": "-1",
    "XPBANK_ALLOW_FINITE_RETENTION": "0",
}

DESCRIPTIONS: dict[str, str] = {  # the README's configuration table
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
    "XPBANK_PROJECTOR": "`1`: the worker runs the projector; `0` with `xpbank projector` apart",
    "XPBANK_REDIS_PREFIX": "prefix of every Redis key",
    "XPBANK_FRAMEWORK_LOGLEVEL": "log level of Faust, aiokafka, aiohttp (`INFO` shows rebalances)",
    "XPBANK_OUTPUT_RETENTION_DAYS": "days the banked, attempts and dead-letter topics keep (`-1`: for ever)",
    "XPBANK_ALLOW_FINITE_RETENTION": "`1`: start although an input topic deletes records (warns hourly)",
}


class ConfigError(ValueError):
    """A configuration variable has a value that cannot be used."""


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
    redis_url: str
    store: str
    partitions: int
    topic_prefix: str
    web_port: int
    data_dir: Path
    rules: Rules
    instance_id: str = ""
    replication_factor: int = 1
    projector: bool = True
    redis_prefix: str = "xpbank:"
    output_retention_days: int = -1
    allow_finite_retention: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        store = env.get("XPBANK_STORE") or DEFAULTS["XPBANK_STORE"]
        if not store.startswith(("rocksdb://", "memory://")):
            raise ConfigError(f"XPBANK_STORE={store!r}: use rocksdb:// or memory://")
        return cls(
            broker=env.get("XPBANK_BROKER") or DEFAULTS["XPBANK_BROKER"],
            redis_url=env.get("XPBANK_REDIS_URL") or DEFAULTS["XPBANK_REDIS_URL"],
            store=store,
            partitions=_int(env, "XPBANK_PARTITIONS", minimum=1),
            topic_prefix=env.get("XPBANK_TOPIC_PREFIX", DEFAULTS["XPBANK_TOPIC_PREFIX"]),
            web_port=_int(env, "XPBANK_WEB_PORT", minimum=1),
            data_dir=Path(env.get("XPBANK_DATA_DIR") or DEFAULTS["XPBANK_DATA_DIR"]),
            instance_id=env.get("XPBANK_INSTANCE_ID", ""),
            replication_factor=_int(env, "XPBANK_REPLICATION_FACTOR", minimum=1),
            projector=_flag(env, "XPBANK_PROJECTOR"),
            redis_prefix=env.get("XPBANK_REDIS_PREFIX", DEFAULTS["XPBANK_REDIS_PREFIX"]),
            output_retention_days=_retention_days(env, "XPBANK_OUTPUT_RETENTION_DAYS"),
            allow_finite_retention=_flag(env, "XPBANK_ALLOW_FINITE_RETENTION"),
            rules=Rules(
                lateness_seconds=_int(env, "XPBANK_LATENESS_SECONDS"),
                max_clock_skew_seconds=_int(env, "XPBANK_MAX_CLOCK_SKEW_SECONDS"),
                max_unanchored_seconds=_int(env, "XPBANK_MAX_UNANCHORED_SECONDS"),
                max_payload_bytes=_int(env, "XPBANK_MAX_PAYLOAD_BYTES", minimum=1),
                generation=_int(env, "XPBANK_GENERATION", minimum=1),
            ),
        )

    @property
    def bootstrap_servers(self) -> str:
        """The broker URL(s) as aiokafka wants them (`host:port[,host:port]`)."""
        return ",".join(part.split("://", 1)[-1] for part in self.broker.split(";"))
