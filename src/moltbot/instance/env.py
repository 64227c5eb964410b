"""Environment variables with their three historical prefixes.

For each variable the first set (non-empty) of ``MOLTBOT_<NAME>``,
``CLAWDBOT_<NAME>``, ``OPENCLAW_<NAME>`` wins (DESIGN §1).
"""

from __future__ import annotations

from collections.abc import Mapping

PREFIXES = ("MOLTBOT_", "CLAWDBOT_", "OPENCLAW_")

IDENTITY_NAMES = ("PROFILE", "STATE_DIR", "CONFIG_PATH", "GATEWAY_PORT")
SECRET_NAMES = ("GATEWAY_TOKEN", "GATEWAY_PASSWORD")
TRUTHY = ("1", "true", "yes", "on")


def lookup(env: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """``(value, variable)`` of the winning alias of ``name``, or ``None``."""
    for prefix in PREFIXES:
        value = env.get(prefix + name, "").strip()
        if value:
            return value, prefix + name
    return None


def get(env: Mapping[str, str], name: str) -> str | None:
    found = lookup(env, name)
    return found[0] if found else None


def flag(env: Mapping[str, str], name: str) -> str | None:
    """``"VARIABLE=value"`` when the winning alias of ``name`` is true (``1``, ``true``,
    ``yes``, ``on``, any case), else ``None``."""
    found = lookup(env, name)
    if found and found[0].lower() in TRUTHY:
        return f"{found[1]}={found[0]}"
    return None


def disagreements(env: Mapping[str, str], name: str) -> list[tuple[str, str]]:
    """All set aliases of ``name`` when they do not all agree (for doctor)."""
    values = [(p + name, env[p + name]) for p in PREFIXES if env.get(p + name, "").strip()]
    return values if len({v for _, v in values}) > 1 else []


def without_identity(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` without the instance identity and gateway secrets.

    Child processes (exec tool, browser, a nested moltbot) must not inherit
    the gateway's identity (DESIGN §2).
    """
    drop = {p + n for p in PREFIXES for n in (*IDENTITY_NAMES, *SECRET_NAMES)}
    drop |= {p + "SERVICE_MARKER" for p in PREFIXES} | {p + "SERVICE_KIND" for p in PREFIXES}
    return {k: v for k, v in env.items() if k not in drop}
