"""Session keys: ``agent:<agentId>:<rest>``, always lower-cased (pure functions)."""

from __future__ import annotations

import re

from moltbot.errors import UsageError

AGENT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_KEY_CHARS = 512
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_agent_id(agent_id: str) -> str:
    value = agent_id.strip().lower()
    if not AGENT_ID.match(value):
        raise UsageError(f"invalid agent id {agent_id!r}: use a-z, 0-9, '_' and '-' (max 64)")
    return value


MAIN_KEY = "main"
"""The name of an agent's main session (``agent:<agentId>:main``)."""


def main_key(agent_id: str, main: str = MAIN_KEY) -> str:
    return f"agent:{agent_id}:{main}"


def normalize_key(key: str, default_agent: str) -> str:
    """The canonical form of a session key.

    Lower-cased and stripped; a key without the ``agent:<id>:`` prefix belongs to
    ``default_agent`` (``"main"`` → ``"agent:main:main"``).
    """
    value = key.strip().lower()
    if not value:
        raise UsageError("session key must not be empty")
    if len(value) > MAX_KEY_CHARS or _CONTROL.search(value):
        raise UsageError("session key is too long or contains control characters")
    if value.startswith("agent:"):
        parts = value.split(":", 2)
        if len(parts) < 3 or not parts[2] or not AGENT_ID.match(parts[1]):
            raise UsageError(f"invalid session key {key!r}: expected agent:<agentId>:<name>")
        return value
    return f"agent:{default_agent}:{value}"


def agent_of(key: str) -> str | None:
    """The agent id of a canonical key, or None."""
    if key.startswith("agent:"):
        parts = key.split(":", 2)
        if len(parts) == 3:
            return parts[1]
    return None


def kind_of(key: str) -> str:
    """``direct`` | ``group`` | ``global`` | ``unknown`` (for session lists)."""
    rest = key.split(":", 2)[2] if key.startswith("agent:") and key.count(":") >= 2 else key
    if rest == "global":
        return "global"
    if ":group:" in f":{rest}:" or ":channel:" in f":{rest}:":
        return "group"
    return "direct"
