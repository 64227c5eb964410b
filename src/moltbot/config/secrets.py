"""Which config values are secrets, and how they are hidden in output."""

from __future__ import annotations

import re
from typing import Any

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
