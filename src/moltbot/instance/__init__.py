"""The instance: profile → paths, ports, names; and the host-wide registry."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from moltbot.instance.names import ServiceNames, service_names
from moltbot.instance.resolve import (
    DEFAULT_AGENT_ID,
    Identity,
    Instance,
    Invocation,
    resolve_identity,
    resolve_instance,
    validate_profile,
)

if TYPE_CHECKING:
    from moltbot.config.store import ConfigSnapshot


def load(
    invocation: Invocation, env: Mapping[str, str], home: Path, *, strict: bool | None = None
) -> tuple[Instance, ConfigSnapshot]:
    """Resolve identity, read (and validate) the config, resolve the instance.

    Raises :class:`moltbot.errors.ConfigError` when the config is invalid.
    """
    from moltbot.config.store import read_config

    identity = resolve_identity(invocation, env, home)
    snapshot = read_config(identity.config_path, env, strict=strict)
    return resolve_instance(identity, snapshot.config, env, invocation), snapshot


__all__ = [
    "DEFAULT_AGENT_ID",
    "Identity",
    "Instance",
    "Invocation",
    "ServiceNames",
    "load",
    "resolve_identity",
    "resolve_instance",
    "service_names",
    "validate_profile",
]
