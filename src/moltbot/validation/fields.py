"""How a model's fields are declared: ``Field(...)``, aliases, config, validators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()
"""The default of a required field (no default, no factory)."""

CONSTRAINTS = ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern")


class AliasChoices:
    """Several input names for one field; the first present wins."""

    __slots__ = ("choices",)

    def __init__(self, *choices: str) -> None:
        self.choices = choices

    def __repr__(self) -> str:
        return f"AliasChoices{self.choices!r}"


class FieldInfo:
    """One field: its default, names, constraints and documentation."""

    __slots__ = (
        "alias",
        "annotation",
        "default",
        "default_factory",
        "description",
        "discriminator",
        "examples",
        "constraints",
        "title",
        "validation_alias",
    )

    def __init__(
        self,
        default: Any = MISSING,
        *,
        default_factory: Callable[[], Any] | None = None,
        alias: str | None = None,
        validation_alias: str | AliasChoices | None = None,
        description: str | None = None,
        title: str | None = None,
        examples: list[Any] | None = None,
        discriminator: str | None = None,
        **constraints: Any,
    ) -> None:
        unknown = set(constraints) - set(CONSTRAINTS)
        if unknown:
            raise TypeError(f"Field() got unsupported arguments: {', '.join(sorted(unknown))}")
        self.default = MISSING if default is ... else default
        self.default_factory = default_factory
        self.alias = alias
        self.validation_alias = validation_alias
        self.description = description
        self.title = title
        self.examples = examples
        self.discriminator = discriminator
        self.constraints = {k: v for k, v in constraints.items() if v is not None}
        self.annotation: Any = None

    def is_required(self) -> bool:
        return self.default is MISSING and self.default_factory is None

    def input_names(self, name: str, populate_by_name: bool) -> tuple[str, ...]:
        """The keys that may carry this field, in order of preference."""
        if isinstance(self.validation_alias, AliasChoices):
            return self.validation_alias.choices
        alias = self.validation_alias or self.alias
        if alias is None or alias == name:
            return (name,)
        return (alias, name) if populate_by_name else (alias,)

    def copy(self) -> FieldInfo:
        clone = FieldInfo.__new__(FieldInfo)
        for slot in FieldInfo.__slots__:
            setattr(clone, slot, getattr(self, slot))
        # constraints are never changed after the field is declared: the copy shares them
        return clone

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{slot}={getattr(self, slot)!r}"
            for slot in ("annotation", "default", "alias", "description")
            if getattr(self, slot) not in (None, MISSING)
        )
        return f"FieldInfo({shown})"


def Field(  # noqa: N802 - named like the class it builds, as callers expect
    default: Any = MISSING,
    *,
    default_factory: Callable[[], Any] | None = None,
    alias: str | None = None,
    validation_alias: str | AliasChoices | None = None,
    description: str | None = None,
    title: str | None = None,
    examples: list[Any] | None = None,
    discriminator: str | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
) -> Any:
    """Declare a field's default, names, constraints or documentation."""
    return FieldInfo(
        default,
        default_factory=default_factory,
        alias=alias,
        validation_alias=validation_alias,
        description=description,
        title=title,
        examples=examples,
        discriminator=discriminator,
        ge=ge,
        gt=gt,
        le=le,
        lt=lt,
        min_length=min_length,
        max_length=max_length,
        pattern=pattern,
    )


def ConfigDict(  # noqa: N802 - reads like the model_config it is
    *,
    extra: Literal["allow", "ignore", "forbid"] | None = None,
    populate_by_name: bool | None = None,
    alias_generator: Callable[[str], str] | None = None,
    frozen: bool | None = None,
    validate_default: bool | None = None,
) -> dict[str, Any]:
    """A model's behaviour: what happens to unknown keys, input names, immutability.

    Only the keys given are set: a subclass's config changes those and inherits the rest
    (unset, ``extra`` is ``"ignore"``, the others off). ``validate_default`` is accepted
    for readability; defaults are never validated.
    """
    del validate_default
    given = {
        "extra": extra,
        "populate_by_name": populate_by_name,
        "alias_generator": alias_generator,
        "frozen": frozen,
    }
    return {key: value for key, value in given.items() if value is not None}


def to_camel(name: str) -> str:
    """``snake_case`` → ``camelCase`` (names already camel stay as they are)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class Decorated:
    """A validator method waiting for its class to be built."""

    __slots__ = ("fields", "func", "kind", "mode")

    def __init__(self, kind: str, func: Any, mode: str, fields: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.func = func
        self.mode = mode
        self.fields = fields


def field_validator(
    *fields: str, mode: Literal["before", "after"] = "after"
) -> Callable[[Any], Any]:
    """Run ``func(cls, value)`` on the named fields' input (``before``) or value (``after``);
    a ``ValueError`` or ``AssertionError`` it raises becomes a validation error."""

    def decorate(func: Any) -> Decorated:
        return Decorated("field", _as_method(func), mode, fields)

    return decorate


def model_validator(*, mode: Literal["before", "after"]) -> Callable[[Any], Any]:
    """``before``: ``func(cls, data) -> data`` on the raw input; ``after``:
    ``func(self) -> self`` on the built model."""

    def decorate(func: Any) -> Decorated:
        return Decorated("model", _as_method(func) if mode == "before" else func, mode)

    return decorate


def _as_method(func: Any) -> Any:
    """A validator written as ``(cls, value)`` is a classmethod, one shared by several
    classes as a plain ``(value)`` function a staticmethod."""
    if isinstance(func, classmethod | staticmethod):
        return func
    code = getattr(func, "__code__", None)
    if code is not None and code.co_argcount and code.co_varnames[0] == "cls":
        return classmethod(func)
    return staticmethod(func)
