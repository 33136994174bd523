"""Configuration from the environment (SPEC §6). Every variable has a default that
works on a developer machine; a bad value fails fast with the variable's name.

`defaults` holds every variable's default and meaning, `values` reads one variable,
`access` the Kafka security and the API's tokens, `settings` the whole `Settings`."""

from xpbank.config.access import SCOPES, ApiTokens, KafkaSecurity, Rereadable
from xpbank.config.defaults import (
    DEFAULTS, DESCRIPTIONS, ENGINES, GUARANTEES, LOG_LEVELS, MIN_TOKEN_LENGTH, SASL_MECHANISMS, SECRETS, SECURITY_PROTOCOLS,
    SINK_SETTINGS, markdown_table,
)
from xpbank.config.settings import Settings
from xpbank.config.values import (
    CLUSTER_SCHEMES, ConfigError, Secret, env_choice, env_flag, env_int, env_readable, env_retention_days, env_text,
    redis_cluster_nodes, warn_if_shared,
)

__all__ = [
    "CLUSTER_SCHEMES", "DEFAULTS", "DESCRIPTIONS", "ENGINES", "GUARANTEES", "LOG_LEVELS", "MIN_TOKEN_LENGTH", "SASL_MECHANISMS",
    "SCOPES", "SECRETS", "SECURITY_PROTOCOLS", "SINK_SETTINGS", "ApiTokens", "ConfigError", "KafkaSecurity",
    "Rereadable", "Secret", "Settings", "env_choice", "env_flag", "env_int", "env_readable", "env_retention_days",
    "env_text", "markdown_table", "redis_cluster_nodes", "warn_if_shared",
]
