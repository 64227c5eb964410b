"""Gateway services: systemd user units, LaunchAgents, Task Scheduler tasks.

One plan per instance (:func:`build_spec`), rendered by the manager of this
platform. Managers are listed by name in :data:`MANAGERS` and imported only
when used. ``CLAWDBOT_SERVICE_MANAGER`` (or its MOLTBOT_/OPENCLAW_ aliases)
selects another manager explicitly, e.g. to write a LaunchAgent on Linux.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from moltbot.errors import ServiceError, UsageError
from moltbot.instance import env as envvars
from moltbot.service.spec import ServiceCommand, ServiceSpec, build_spec, cli_prefix

if TYPE_CHECKING:
    from moltbot.service.base import ServiceManager

# name -> "module:Class"
MANAGERS: dict[str, str] = {
    "systemd": "moltbot.service.systemd:SystemdManager",
    "launchd": "moltbot.service.launchd:LaunchdManager",
    "schtasks": "moltbot.service.schtasks:SchtasksManager",
}
PLATFORM_MANAGERS = {"linux": "systemd", "darwin": "launchd", "win32": "schtasks"}


def manager_name(env: Mapping[str, str], platform: str | None = None) -> str:
    """The manager for this host: the override variable, else by platform."""
    override = envvars.lookup(env, "SERVICE_MANAGER")
    if override:
        value, variable = override
        if value not in MANAGERS:
            raise UsageError(f"{variable}={value!r} is not one of {', '.join(MANAGERS)}")
        return value
    platform = platform or sys.platform
    for prefix, name in PLATFORM_MANAGERS.items():
        if platform.startswith(prefix):
            return name
    raise ServiceError(
        f"gateway services are not supported on {platform}",
        hint="run `moltbot gateway` in the foreground under your own supervisor",
    )


def get_manager(env: Mapping[str, str], home: Path, name: str | None = None) -> ServiceManager:
    """An instance of the named (default: this host's) manager, running tools with ``env``."""
    from moltbot.service.runner import Runner

    name = name or manager_name(env)
    module_name, _, class_name = MANAGERS[name].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    manager: ServiceManager = cls(Runner(env), home)
    return manager


__all__ = [
    "MANAGERS",
    "ServiceCommand",
    "ServiceSpec",
    "build_spec",
    "cli_prefix",
    "get_manager",
    "manager_name",
]
