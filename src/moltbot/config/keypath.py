"""Dotted key paths (``gateway.auth.token``, ``agents.list[0].id``) over plain data."""

from __future__ import annotations

import re
from typing import Any

from moltbot.errors import NotFoundError, UsageError

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

Key = str | int


def parse(path: str) -> list[Key]:
    """Split a key path into keys (str) and list indexes (int)."""
    if not path or path.startswith(".") or path.endswith(".") or ".." in path:
        raise UsageError(f"invalid key path {path!r} (use dotted keys like gateway.port)")
    keys: list[Key] = []
    position = 0
    for match in _SEGMENT.finditer(path):
        gap = path[position : match.start()]
        if gap not in ("", "."):
            raise UsageError(f"invalid key path {path!r} near {gap!r}")
        keys.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        position = match.end()
    if position != len(path):
        raise UsageError(f"invalid key path {path!r}")
    return keys


def format_path(keys: list[Key] | tuple[Key, ...]) -> str:
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out or "<root>"


def get(data: Any, keys: list[Key]) -> Any:
    node = data
    for depth, key in enumerate(keys):
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            raise NotFoundError(f"{format_path(keys[: depth + 1])} is not set") from None
    return node


def set_(data: dict[str, Any], keys: list[Key], value: Any) -> None:
    """Set a value, creating intermediate objects (and arrays before an index).

    A list index must exist, or equal the list's length to append. Anything else
    is a :class:`UsageError` naming the path.
    """
    node: Any = data
    for depth, key in enumerate(keys[:-1]):
        following = keys[depth + 1]
        if isinstance(node, dict) and isinstance(key, str):
            if not isinstance(node.get(key), dict | list):
                node[key] = [] if isinstance(following, int) else {}
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and key < len(node):
            if not isinstance(node[key], dict | list):
                node[key] = [] if isinstance(following, int) else {}
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and key == len(node):
            node.append([] if isinstance(following, int) else {})  # agents.list[0].id on []
            node = node[key]
        else:
            raise _cannot_set(keys, depth, node)
    last = keys[-1]
    if isinstance(node, dict) and isinstance(last, str):
        node[last] = value
    elif isinstance(node, list) and isinstance(last, int) and last <= len(node):
        if last == len(node):
            node.append(value)
        else:
            node[last] = value
    else:
        raise _cannot_set(keys, len(keys) - 1, node)


def _cannot_set(keys: list[Key], depth: int, node: Any) -> UsageError:
    parent, key = format_path(keys[:depth]), keys[depth]
    if isinstance(node, list) and isinstance(key, int):
        why = f"{parent} has {len(node)} item(s); use an index up to {len(node)} (to append)"
    elif isinstance(node, list):
        why = f"{parent} is an array; use an index like {parent}[0]"
    else:
        why = f"{parent} is an object; use a key like {parent}.name, not [{key}]"
    return UsageError(f"cannot set {format_path(keys)}: {why}")


def unset(data: dict[str, Any], keys: list[Key]) -> None:
    parent = get(data, keys[:-1]) if len(keys) > 1 else data
    last = keys[-1]
    try:
        del parent[last]
    except (KeyError, IndexError, TypeError):
        raise NotFoundError(f"{format_path(keys)} is not set") from None
