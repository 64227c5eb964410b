"""The tools a runtime offers: the built-ins of :data:`~moltbot.agents.tools.TOOLS`
that ``tools.allow`` / ``tools.deny`` let through and that are enabled for the config.

A tool whose module does not exist (yet) is skipped quietly; one that fails to
import, build or answer ``enabled`` is skipped with a warning.
"""

from __future__ import annotations

import fnmatch
import importlib
import logging

from moltbot.agents.tools import TOOLS
from moltbot.agents.tools.base import Tool
from moltbot.config.schema import Config


def load_tools(config: Config, log: logging.Logger) -> dict[str, Tool]:
    policy = config.tools
    out: dict[str, Tool] = {}
    for name, target in TOOLS.items():
        if not allowed(name, policy.allow, policy.deny):
            continue
        module_name, _, class_name = target.partition(":")
        try:
            module = importlib.import_module(module_name)
            tool: Tool = getattr(module, class_name)()
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # not built (yet)
            log.warning("tool %s unavailable: %s", name, exc)
            continue
        except Exception as exc:
            log.warning("tool %s unavailable: %s", name, exc)
            continue
        try:
            if tool.enabled(config):
                out[name] = tool
        except Exception as exc:
            log.warning("tool %s unavailable: %s", name, exc)
    return out


def allowed(name: str, allow: list[str] | None, deny: list[str]) -> bool:
    """Deny patterns win; no allow list allows everything else (glob, case-insensitive)."""
    lowered = name.lower()
    if any(fnmatch.fnmatch(lowered, pattern.lower()) for pattern in deny):
        return False
    if allow is None:
        return True
    return any(fnmatch.fnmatch(lowered, pattern.lower()) for pattern in allow)
