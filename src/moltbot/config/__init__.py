"""Config: schema, JSON5 load with ${VAR} substitution, atomic locked writes.

``Config`` (the schema) is imported on first use, so commands that only read the
file as written (``config get``) do not pay for the models.
"""

from typing import TYPE_CHECKING, Any

from moltbot.config.store import (
    ConfigSnapshot,
    content_hash,
    parse_text,
    read_config,
    update_config,
    validate,
)

if TYPE_CHECKING:
    from moltbot.config.schema import Config


def __getattr__(name: str) -> Any:
    if name == "Config":
        from moltbot.config.schema import Config

        return Config
    raise AttributeError(f"module 'moltbot.config' has no attribute {name!r}")


__all__ = [
    "Config",
    "ConfigSnapshot",
    "content_hash",
    "parse_text",
    "read_config",
    "update_config",
    "validate",
]
