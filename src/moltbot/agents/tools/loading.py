"""The tools a runtime offers: the built-ins of :data:`~moltbot.agents.tools.TOOLS`
that ``tools.allow`` / ``tools.deny`` let through and that are enabled for the config.

Every entry of the table is part of moltbot: one whose module is missing or broken,
that cannot be built or whose ``enabled`` raises is a broken install, and
:func:`load_tools` raises :class:`~moltbot.errors.MoltbotError` naming it (the agents
subsystem then reports ``FAILED`` with that reason) instead of offering fewer tools.
"""

from __future__ import annotations

import fnmatch

from moltbot.agents.tools import TOOLS
from moltbot.agents.tools.base import Tool
from moltbot.config.schema import Config
from moltbot.errors import MoltbotError
from moltbot.lazy import load


def load_tools(config: Config) -> dict[str, Tool]:
    policy = config.tools
    out: dict[str, Tool] = {}
    for name, target in TOOLS.items():
        if not allowed(name, policy.allow, policy.deny):
            continue
        cls = load(target, f"tool {name}")
        try:
            tool: Tool = cls()
            enabled = tool.enabled(config)
        except Exception as exc:
            raise MoltbotError(f"tool {name}: {type(exc).__name__}: {exc}") from exc
        if enabled:
            out[name] = tool
    return out


def allowed(name: str, allow: list[str] | None, deny: list[str]) -> bool:
    """Deny patterns win; no allow list allows everything else (glob, case-insensitive)."""
    lowered = name.lower()
    if any(fnmatch.fnmatch(lowered, pattern.lower()) for pattern in deny):
        return False
    if allow is None:
        return True
    return any(fnmatch.fnmatch(lowered, pattern.lower()) for pattern in allow)
