"""``${VAR}`` substitution in config strings (``$${VAR}`` stays a literal ``${VAR}``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from moltbot.config.keypath import Key, format_path
from moltbot.errors import ConfigError

_REFERENCE = re.compile(r"\$(\$?)\{([A-Z_][A-Z0-9_]*)\}")

Missing = Literal["error", "keep"]


def substitute(
    data: Any,
    env: Mapping[str, str],
    source: str,
    path: tuple[Key, ...] = (),
    *,
    missing: Missing = "error",
) -> Any:
    """A copy of ``data`` with ``${VAR}`` references replaced from ``env``.

    An unset or empty variable is a :class:`ConfigError` naming the variable and
    the key path, or, with ``missing="keep"``, stays as written.
    """
    if isinstance(data, dict):
        return {k: substitute(v, env, source, (*path, k), missing=missing) for k, v in data.items()}
    if isinstance(data, list):
        return [substitute(v, env, source, (*path, i), missing=missing) for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data:
        return _substitute_string(data, env, source, path, missing)
    return data


def _substitute_string(
    text: str, env: Mapping[str, str], source: str, path: tuple[Key, ...], missing: Missing
) -> str:
    def replace(match: re.Match[str]) -> str:
        escaped, name = match.groups()
        if escaped:
            return "${" + name + "}"
        value = env.get(name)
        if not value:
            if missing == "keep":
                return match.group(0)
            raise ConfigError(
                f'{source}: missing environment variable "{name}" referenced at '
                f"{format_path(list(path))}",
                hint=f"export {name}=... or replace the reference in the config file",
            )
        return value

    return _REFERENCE.sub(replace, text)
