"""Reading one variable: text (or its `_FILE`), a choice, a readable path, a whole
number, a flag, a Redis Cluster URL; a bad value fails with the variable's name. Secrets
are masked in every repr."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from xpbank.config.defaults import DEFAULTS

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


def env_text(env: Mapping[str, str], name: str) -> str:
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


WARNED: set[tuple[str, str]] = set()


def warn_if_shared(name: str, path: str) -> None:
    """Warn (once per process) when a secret's file may be read by its group or others."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO) and (name, path) not in WARNED:
        WARNED.add((name, path))
        logging.getLogger("xpbank.config").warning(
            "%s=%s can be read by its group or others (mode %s): chmod 600 it", name, path, oct(mode & 0o777))


def env_choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = (env.get(name) or DEFAULTS[name]).strip().upper()
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: use one of {', '.join(choices)}")
    return value


def env_readable(env: Mapping[str, str], name: str) -> str:
    path = env.get(name) or DEFAULTS[name]
    if path and not os.access(path, os.R_OK):
        raise ConfigError(f"{name}={path!r} is not a readable file")
    return path


CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def redis_cluster_nodes(url: str) -> tuple[str, list[tuple[str, int]]]:
    """A `redis+cluster://[user:password@]host:port[,host:port...]` URL as a plain `redis://`
    (`rediss://`) URL of its first node, and every node it names (host, port)."""
    scheme, rest = url.split("://", 1)
    credentials, _, hosts = rest.split("/", 1)[0].rpartition("@")
    nodes = []
    for part in hosts.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError("XPBANK_REDIS_URL: a redis+cluster:// URL names its nodes as host:port[,host:port...]")
        nodes.append((host, int(port)))
    plain = scheme.replace("+cluster", "") + "://" + (credentials + "@" if credentials else "") + f"{nodes[0][0]}:{nodes[0][1]}"
    return plain, nodes


def env_int(env: Mapping[str, str], name: str, minimum: int = 0) -> int:
    raw = env.get(name) or DEFAULTS[name]
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def env_retention_days(env: Mapping[str, str], name: str) -> int:
    value = env_int(env, name, minimum=-1)
    if value == 0:
        raise ConfigError(f"{name}=0 would delete records at once: use a number of days, or -1 for ever")
    return value


def env_flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or DEFAULTS[name]).strip().lower()
    if raw not in ("0", "1", "true", "false", "yes", "no", "on", "off"):
        raise ConfigError(f"{name}={raw!r}: use 1 or 0")
    return raw in ("1", "true", "yes", "on")
