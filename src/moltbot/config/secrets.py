"""Which config values are secrets, and how they are hidden in output."""

from __future__ import annotations

import re
from typing import Any

from moltbot.errors import UsageError

REDACTED = "__MOLTBOT_REDACTED__"

_SECRET_KEY = re.compile(
    r"(token|password|secret|apikey|api_key|privatekey|signingsecret|credentials?)$", re.I
)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key.replace("-", "")))


def redact(data: Any) -> Any:
    """A copy of ``data`` with every secret-looking value replaced by :data:`REDACTED`.

    ``${VAR}`` references are not secrets themselves and are shown as written.
    """
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            if is_secret_key(str(key)) and isinstance(value, str) and value:
                out[key] = value if _is_env_reference(value) else REDACTED
            else:
                out[key] = redact(value)
        return out
    if isinstance(data, list):
        return [redact(item) for item in data]
    return data


def _is_env_reference(value: str) -> bool:
    return bool(re.fullmatch(r"\$\{[A-Z_][A-Z0-9_]*\}", value))


_SECRET_VALUE = re.compile(
    r"""(?P<key>["']?[A-Za-z_]*(?:[Tt]oken|[Pp]assword|[Ss]ecret|[Aa]pi[Kk]ey)["']?\s*:\s*)"""
    r"""(?P<q>["'])(?P<value>(?:(?!(?P=q)).)*)(?P=q)"""
)


def redact_text(raw: str) -> str:
    """Config text (JSON5 as written) with secret-looking values replaced by
    :data:`REDACTED`; ``${VAR}`` references are kept."""

    def replace(match: re.Match[str]) -> str:
        value = match.group("value")
        if not value or re.fullmatch(r"\$\{[A-Z_][A-Z0-9_]*\}", value):
            return match.group(0)
        return f"{match.group('key')}{match.group('q')}{REDACTED}{match.group('q')}"

    return _SECRET_VALUE.sub(replace, raw)


def restore(new: Any, current: Any, where: tuple[str | int, ...] = ()) -> Any:
    """``new`` (what a client sends back after seeing redacted output) with its redacted
    values put back from ``current`` (the file's data as written): a value that is
    :data:`REDACTED` gets the string at the same key path in ``current``; a longer string
    holding the marker (text that :func:`redact_text` redacted inside a value) gets the
    current value when that redacts to exactly it.

    Raises :class:`UsageError` naming the key path when a marker matches nothing there:
    no value is guessed."""
    if isinstance(new, str) and REDACTED in new:
        if (
            isinstance(current, str)
            and current
            and (new == REDACTED or redact_text(current) == new)
        ):
            return current
        from moltbot.config.keypath import format_path

        raise UsageError(
            f"{format_path(where)} holds {REDACTED} but the file has no secret there to keep; "
            "send the value itself (nothing was written)"
        )
    if isinstance(new, dict):
        old = current if isinstance(current, dict) else {}
        return {k: restore(v, old.get(k), (*where, k)) for k, v in new.items()}
    if isinstance(new, list):
        old_items = current if isinstance(current, list) else []
        return [
            restore(v, old_items[i] if i < len(old_items) else None, (*where, i))
            for i, v in enumerate(new)
        ]
    return new
