"""One validator per annotation: ``check(value) -> value`` or raise :class:`Invalid`.

Coercion is the lenient kind a config file or a JSON frame needs: ``"7"`` and ``7.0``
are the integer 7, ``"yes"`` and ``1`` are true, a tuple is a list. A union first
looks for a member the value already is, then tries each member in order.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from moltbot.validation.errors import ErrorDetail, Invalid, fail, under
from moltbot.validation.fields import FieldInfo

Check = Callable[[Any], Any]

_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
_NONE = type(None)
_INT_TEXT = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*(?:\.0+)?")
"""An integer as text: ASCII digits, ``_`` between them, a zero fraction (``"7.0"``)."""
_ABSENT = object()


def is_model(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "__model_fields__")


def unwrap(tp: Any) -> tuple[Any, dict[str, Any], str | None]:
    """``Annotated[T, Field(...)]`` → ``(T, constraints, discriminator)``."""
    constraints: dict[str, Any] = {}
    discriminator = None
    while typing.get_origin(tp) is typing.Annotated:
        tp, *extras = typing.get_args(tp)
        for extra in extras:
            if isinstance(extra, FieldInfo):
                constraints.update(extra.constraints)
                discriminator = extra.discriminator or discriminator
    return tp, constraints, discriminator


def compile_type(
    tp: Any, constraints: Mapping[str, Any] | None = None, discriminator: str | None = None
) -> Check:
    tp, own, own_discriminator = unwrap(tp)
    merged = {**own, **(constraints or {})}
    check = _base(tp, discriminator or own_discriminator)
    if merged:
        check = _constrained(check, merged, _sized_kind(tp))
    return check


def _sized_kind(tp: Any) -> str:
    origin = typing.get_origin(tp) or tp
    if origin is str:
        return "string"
    if origin in (dict, Mapping):
        return "Dictionary"
    return {tuple: "Tuple", set: "Set", frozenset: "Frozenset"}.get(origin, "List")


def _base(tp: Any, discriminator: str | None) -> Check:
    if tp is Any or tp is object:
        return _identity
    if tp is None or tp is _NONE:
        return _none
    if tp is str:
        return _str
    if tp is bool:
        return _bool
    if tp is int:
        return _int
    if tp is float:
        return _float
    if is_model(tp):
        return tp.__validate_input__
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return _literal(args)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not _NONE]
        if discriminator:
            inner = _discriminated(members, discriminator)
        elif len(members) == 1:
            inner = compile_type(members[0])
        else:
            inner = _union(members)
        return _nullable(inner) if len(members) < len(args) else inner
    if origin in (list, Sequence, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            raise TypeError(f"only tuple[X, ...] is supported: {tp!r}")
        build = {tuple: tuple, set: set, frozenset: frozenset}.get(origin or tp, list)
        return _sequence(compile_type(args[0] if args else Any), build)
    if origin in (dict, Mapping) or tp is dict:
        key, value = args if args else (Any, Any)
        return _mapping(compile_type(key), compile_type(value))
    raise TypeError(f"unsupported field type: {tp!r}")


def _identity(value: Any) -> Any:
    return value


def _none(value: Any) -> None:
    if value is not None:
        raise fail("none_required", "Input should be None", value)


def _str(value: Any) -> str:
    if isinstance(value, enum.Enum) and isinstance(value.value, str):
        return value.value  # a (str, Enum) member formats as "Class.NAME"
    if isinstance(value, str):
        return value
    raise fail("string_type", "Input should be a valid string", value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, float) and value in (0.0, 1.0):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    if isinstance(value, int | str) or (isinstance(value, float) and value.is_integer()):
        raise fail(
            "bool_parsing", "Input should be a valid boolean, unable to interpret input", value
        )
    raise fail("bool_type", "Input should be a valid boolean", value)


def _int(value: Any) -> int:
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise fail("finite_number", "Input should be a finite number", value)
        raise fail(
            "int_from_float",
            "Input should be a valid integer, got a number with a fractional part",
            value,
        )
    if isinstance(value, str):
        text = value.strip()
        if _INT_TEXT.fullmatch(text):
            try:
                return int(text.partition(".")[0])
            except ValueError:  # more digits than Python converts
                raise fail(
                    "int_parsing_size",
                    "Unable to parse input string as an integer, exceeded maximum size",
                    value,
                ) from None
        raise fail(
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer",
            value,
        )
    raise fail("int_type", "Input should be a valid integer", value)


def _float(value: Any) -> float:
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            raise fail("float_type", "Input should be a valid number", value) from None
    if isinstance(value, str):
        try:
            if not value.isascii():  # float() would read other scripts' digits
                raise ValueError(value)
            return float(value.strip())
        except ValueError:
            raise fail(
                "float_parsing",
                "Input should be a valid number, unable to parse string as a number",
                value,
            ) from None
    raise fail("float_type", "Input should be a valid number", value)


def _enum(tp: type[enum.Enum]) -> Check:
    def check(value: Any) -> Any:
        lookup = value
        if isinstance(value, str) and issubclass(tp, int):  # an IntEnum from "2"
            try:
                lookup = _int(value)
            except Invalid:
                pass
        try:
            return tp(lookup)
        except ValueError:
            expected = _or_list([repr(m.value) for m in tp])
            raise fail(
                "enum", f"Input should be {expected}", value, {"expected": expected}
            ) from None

    return check


def _or_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _literal(allowed: tuple[Any, ...]) -> Check:
    expected = _or_list([repr(a) for a in allowed])

    def check(value: Any) -> Any:
        for option in allowed:
            if value == option and type(value) is type(option):
                return option
        raise fail("literal_error", f"Input should be {expected}", value, {"expected": expected})

    return check


def _nullable(inner: Check) -> Check:
    def check(value: Any) -> Any:
        return None if value is None else inner(value)

    return check


def _sequence(item: Check, build: type) -> Check:
    def check(value: Any) -> Any:
        if not isinstance(value, list | tuple | set | frozenset):
            raise fail(
                {list: "list_type", frozenset: "frozen_set_type"}.get(
                    build, f"{build.__name__}_type"
                ),
                f"Input should be a valid {build.__name__}",
                value,
            )
        if item is _identity:
            return build(value)
        out = []
        problems: list[ErrorDetail] = []
        for index, element in enumerate(value):
            try:
                out.append(item(element))
            except Invalid as exc:
                problems.extend(under(index, exc.details))
        if problems:
            raise Invalid(problems)
        return build(out)

    return check


def _mapping(key: Check, item: Check) -> Check:
    def check(value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise fail("dict_type", "Input should be a valid dictionary", value)
        if key is _identity and item is _identity:
            return dict(value)
        out = {}
        problems: list[ErrorDetail] = []
        for name, element in value.items():
            checked = _ABSENT
            try:
                checked = key(name)
            except Invalid as exc:
                problems.extend(under(name, under("[key]", exc.details)))
            try:
                out[checked] = item(element)
            except Invalid as exc:
                problems.extend(under(name, exc.details))
        if problems:
            raise Invalid(problems)
        return out

    return check


def tag(tp: Any) -> str:
    """A union member's name in error locations (``str``, ``list[str]``, a class name)."""
    tp, limits, _ = unwrap(tp)
    if limits and tp in (str, int, float):
        return f"constrained-{tp.__name__}"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        base = next((b.__name__ + "-" for b in (int, str, float) if issubclass(tp, b)), "")
        return f"{base}enum[{tp.__name__}]"
    if isinstance(tp, type):
        return tp.__name__
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return "literal[" + ",".join(repr(a) for a in args) + "]"
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return f"tuple[{tag(args[0])}, ...]"
    name = getattr(origin, "__name__", str(origin))
    return f"{name}[{','.join(tag(a) if a is not Any else 'any' for a in args)}]"


def _exact(tp: Any, value: Any) -> bool:
    """Whether ``value`` already is of member ``tp`` (no conversion needed)."""
    tp = unwrap(tp)[0]
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, float)
    if tp is str:
        return isinstance(value, str)
    if isinstance(tp, type):
        return isinstance(value, tp)
    if typing.get_origin(tp) is typing.Literal:
        return any(value == a and type(value) is type(a) for a in typing.get_args(tp))
    return False


def _union(members: list[Any]) -> Check:
    checks = [(member, compile_type(member), tag(member)) for member in members]

    def check(value: Any) -> Any:
        for member, validate, _ in checks:
            if _exact(member, value):
                try:
                    return validate(value)
                except Invalid:
                    break
        problems: list[ErrorDetail] = []
        for _, validate, name in checks:
            try:
                return validate(value)
            except Invalid as exc:
                problems.extend(under(name, exc.details))
        raise Invalid(problems)

    return check


def _discriminated(members: list[Any], field: str) -> Check:
    models = [unwrap(member)[0] for member in members]
    by_tag: dict[Any, Check] = {}
    key_names: tuple[str, ...] = ()
    expected = named = ""

    def learn_tags() -> None:
        """Read each member's tags at first use: a member may contain this very union,
        and its fields are only known once its class is complete."""
        nonlocal key_names, expected, named
        for model in models:
            info = model.model_fields[field]
            for option in typing.get_args(unwrap(info.annotation)[0]):
                by_tag[option] = model.__validate_input__
        key_names = models[0].model_fields[field].input_names(field, True)
        expected = ", ".join(repr(t) for t in by_tag)
        named = " | ".join(repr(k) for k in (field, *(k for k in key_names if k != field)))

    def check(value: Any) -> Any:
        if not by_tag:
            learn_tags()
        if type(value) in models:
            return value
        if not isinstance(value, Mapping):
            raise fail(
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
                value,
            )
        found = next((value[k] for k in key_names if k in value), _ABSENT)
        if found is _ABSENT:
            raise fail(
                "union_tag_not_found",
                f"Unable to extract tag using discriminator {named}",
                value,
                {"discriminator": named},
            )
        try:
            validate = by_tag.get(found)
        except TypeError:  # an unhashable tag
            validate = None
        if validate is None:
            raise fail(
                "union_tag_invalid",
                f"Input tag '{found}' found using {named} does not match any of the "
                f"expected tags: {expected}",
                value,
                {"discriminator": named, "tag": str(found), "expected_tags": expected},
            )
        try:
            return validate(value)
        except Invalid as exc:
            raise Invalid(under(str(found), exc.details)) from None

    return check


def _constrained(check: Check, limits: Mapping[str, Any], kind: str) -> Check:
    ge, gt, le, lt = (limits.get(k) for k in ("ge", "gt", "le", "lt"))
    shortest, longest = limits.get("min_length"), limits.get("max_length")
    pattern = limits.get("pattern")
    regex = re.compile(pattern) if pattern is not None else None

    def constrained(given: Any) -> Any:
        value = check(given)
        if value is None:
            return value
        try:
            within_limits(value)
        except Invalid as exc:  # reported with the input as given, like pydantic
            raise Invalid([{**d, "input": given} for d in exc.details]) from None
        return value

    def within_limits(value: Any) -> None:
        if ge is not None and value < ge:
            raise fail(
                "greater_than_equal",
                f"Input should be greater than or equal to {ge}",
                value,
                {"ge": ge},
            )
        if gt is not None and value <= gt:
            raise fail("greater_than", f"Input should be greater than {gt}", value, {"gt": gt})
        if le is not None and value > le:
            raise fail(
                "less_than_equal", f"Input should be less than or equal to {le}", value, {"le": le}
            )
        if lt is not None and value >= lt:
            raise fail("less_than", f"Input should be less than {lt}", value, {"lt": lt})
        if shortest is not None and len(value) < shortest:
            raise _length("short", kind, shortest, value)
        if longest is not None and len(value) > longest:
            raise _length("long", kind, longest, value)
        if regex is not None and not regex.search(value):
            raise fail(
                "string_pattern_mismatch",
                f"String should match pattern '{pattern}'",
                value,
                {"pattern": pattern},
            )

    return constrained


def _length(which: str, kind: str, limit: int, value: Any) -> Invalid:
    bound = "at least" if which == "short" else "at most"
    key = "min_length" if which == "short" else "max_length"
    if kind == "string":
        unit = "character" if limit == 1 else "characters"
        return fail(
            f"string_too_{which}", f"String should have {bound} {limit} {unit}", value, {key: limit}
        )
    unit = "item" if limit == 1 else "items"
    # like pydantic, a mapping or set that is too long is not counted to the end
    actual = None if which == "long" and kind in ("Dictionary", "Set", "Frozenset") else len(value)
    return fail(
        f"too_{which}",
        f"{kind} should have {bound} {limit} {unit} after validation, "
        f"not {'more' if actual is None else actual}",
        value,
        {"field_type": kind, key: limit, "actual_length": actual},
    )
