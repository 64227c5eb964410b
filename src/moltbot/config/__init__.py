"""Config: schema, JSON5 load with ${VAR} substitution, atomic locked writes."""

from moltbot.config.schema import Config
from moltbot.config.store import (
    ConfigSnapshot,
    content_hash,
    parse_text,
    read_config,
    update_config,
    validate,
)

__all__ = [
    "Config",
    "ConfigSnapshot",
    "content_hash",
    "parse_text",
    "read_config",
    "update_config",
    "validate",
]
