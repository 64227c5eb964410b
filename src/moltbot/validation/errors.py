"""Validation errors: every problem found, each with where it is and what was expected."""

from __future__ import annotations

from typing import Any

ErrorDetail = dict[str, Any]
"""``{"type", "loc", "msg", "input"[, "ctx"]}``: ``loc`` is a tuple of keys and indexes."""


class Invalid(Exception):  # noqa: N818 - internal signal, never escapes the package
    """Raised by a type's validator with the problems found below it."""

    def __init__(self, details: list[ErrorDetail]) -> None:
        super().__init__(details)
        self.details = details


def detail(kind: str, msg: str, value: Any, ctx: dict[str, Any] | None = None) -> ErrorDetail:
    found: ErrorDetail = {"type": kind, "loc": (), "msg": msg, "input": value}
    if ctx is not None:
        found["ctx"] = ctx
    return found


def fail(kind: str, msg: str, value: Any, ctx: dict[str, Any] | None = None) -> Invalid:
    return Invalid([detail(kind, msg, value, ctx)])


def under(part: Any, details: list[ErrorDetail]) -> list[ErrorDetail]:
    """``details`` moved one level down, below key or index ``part``."""
    part = loc_part(part)
    return [{**d, "loc": (part, *d["loc"])} for d in details]


def loc_part(key: Any) -> str | int:
    """A mapping key as a location: strings and integers as they are, others as text."""
    return key if isinstance(key, str | int) else str(key)


class ValidationError(ValueError):
    """The input does not fit the model; :meth:`errors` lists every problem."""

    def __init__(self, title: str, details: list[ErrorDetail]) -> None:
        self.title = title
        self._details = details
        super().__init__(title)

    def __str__(self) -> str:
        # rendered when shown, not when raised: inputs can be large and errors many
        return self._render()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._render()!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.title, self._details))

    def errors(self) -> list[ErrorDetail]:
        return [dict(d) for d in self._details]

    def error_count(self) -> int:
        return len(self._details)

    def _render(self) -> str:
        count = len(self._details)
        lines = [f"{count} validation error{'s' if count != 1 else ''} for {self.title}"]
        for d in self._details:
            lines.append(".".join(str(p) for p in d["loc"]) or "(root)")
            shown = _shown(d["input"])
            if len(shown) > 50:
                shown = shown[:25] + "..." + shown[-24:]
            lines.append(
                f"  {d['msg']} [type={d['type']}, input_value={shown}, "
                f"input_type={type(d['input']).__name__}]"
            )
        return "\n".join(lines)


def _shown(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # nested too deep, or a broken __repr__
        return f"<unprintable {type(value).__name__} object>"
