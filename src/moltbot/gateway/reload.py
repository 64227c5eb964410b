"""Config hot reload: which changed keys apply live and which need a restart."""

from __future__ import annotations

from typing import Any

from moltbot.config.schema import Config

NO_RESTART_PREFIXES = (
    "gateway.reload",
    "gateway.restartGraceSeconds",
    "gateway.remote",
    "gateway.http",
    "agents",
    "models",
    "tools",
    "bindings",
    "session",
    "logging",
    "meta",
    "wizard",
    "env",
    "browser",
    "channels",
    "rescue",
    "strict",
    "cron",
    "skills",  # read per turn: a skill toggled in the Control UI applies at once
    "commands",  # the channels' pipeline settings and native menus are reconfigured live
    "hooks.enabled",
    "hooks.token",
    "hooks.maxBodyBytes",
)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    return {prefix: data}


def changed_paths(old: Config, new: Config) -> list[str]:
    a = flatten(old.model_dump(by_alias=True, exclude_none=True))
    b = flatten(new.model_dump(by_alias=True, exclude_none=True))
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def needs_restart(paths: list[str], mode: str) -> bool:
    """Whether the change set needs an in-process restart under ``gateway.reload.mode``."""
    if mode == "restart":
        return bool(paths)
    if mode == "hot":
        return False
    return any(not _matches(path) for path in paths)


def _matches(path: str) -> bool:
    return any(path == p or path.startswith(p + ".") for p in NO_RESTART_PREFIXES)
