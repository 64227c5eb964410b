"""Lazy registries: ``"module:Name"`` strings resolved when they are first needed.

Tables of subsystems, method families, HTTP route modules and tools name their
implementations as strings, so that ``moltbot --help`` imports none of them. Every
entry is part of moltbot itself: a module or name that cannot be loaded is a typo
or a broken install, never an optional feature. :func:`load` therefore raises a
:class:`~moltbot.errors.MoltbotError` that names the entry (the original exception
is chained) instead of letting the entry vanish.
"""

from __future__ import annotations

import importlib
from typing import Any

from moltbot.errors import MoltbotError


def load(target: str, what: str) -> Any:
    """The module ``target`` names (``"pkg.mod"``), or its attribute (``"pkg.mod:Name"``).

    ``what`` says which entry this is (``"subsystem canvas"``) for the error message.
    Raises :class:`MoltbotError` when the module fails to import for any reason or
    lacks the attribute.
    """
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise MoltbotError(
            f"{what}: cannot import {module_name}: {type(exc).__name__}: {exc}",
            hint="the installation is broken or a registry entry has a typo; reinstall moltbot",
        ) from exc
    if not attribute:
        return module
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise MoltbotError(
            f"{what}: {module_name} has no {attribute}",
            hint="the installation is broken or a registry entry has a typo; reinstall moltbot",
        ) from None
