"""``${VAR}`` substitution in config strings (``$${VAR}`` stays a literal ``${VAR}``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from moltbot.config.keypath import Key, format_path
from moltbot.errors import ConfigError

_REFERENCE = re.compile(r"\$(\$?)\{([A-Z_][A-Z0-9_]*)\}")


def substitute(data: Any, env: Mapping[str, str], source: str, path: tuple[Key, ...] = ()) -> Any:
    if isinstance(data, dict):
        return {k: substitute(v, env, source, (*path, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [substitute(v, env, source, (*path, i)) for i, v in enumerate(data)]
    if isinstance(data, str) and "${" in data:
        return _substitute_string(data, env, source, path)
    return data


def _substitute_string(text: str, env: Mapping[str, str], source: str, path: tuple[Key, ...]) -> str:
    def replace(match: re.Match[str]) -> str:
        escaped, name = match.groups()
        if escaped:
            return "${" + name + "}"
        value = env.get(name)
        if not value:
            raise ConfigError(
                f'{source}: missing environment variable "{name}" referenced at '
                f"{format_path(list(path))}",
                hint=f"export {name}=... or replace the reference in the config file",
            )
        return value

    return _REFERENCE.sub(replace, text)
