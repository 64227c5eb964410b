"""``BaseModel``: a class whose annotated attributes are validated fields.

A class is only recorded when it is defined; its annotations are resolved and its
validators compiled at its first use, so defining a hundred models costs next to
nothing and forward references to classes further down a module just work.
"""

from __future__ import annotations

import copy
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, Self

from moltbot.validation.errors import (
    ErrorDetail,
    Invalid,
    ValidationError,
    fail,
    loc_part,
    under,
)
from moltbot.validation.fields import MISSING, Decorated, FieldInfo
from moltbot.validation.types import Check, compile_type

_CLASSVAR = re.compile(r"^(typing\.|t\.)?ClassVar\b")
_DEFAULT_CONFIG: dict[str, Any] = {
    "extra": "ignore",
    "populate_by_name": False,
    "alias_generator": None,
    "frozen": False,
}
_IMMUTABLE = (str, int, float, bool, bytes, tuple, frozenset, type(None))


class _Slot:
    """One field as validation uses it."""

    __slots__ = ("after", "before", "check", "default", "factory", "info", "name", "names")

    def __init__(self, name: str, info: FieldInfo, populate_by_name: bool) -> None:
        self.name = name
        self.info = info
        self.names = info.input_names(name, populate_by_name)
        self.check: Check = compile_type(info.annotation, info.constraints, info.discriminator)
        self.before: list[Callable[[Any], Any]] = []
        self.after: list[Callable[[Any], Any]] = []
        self.default = info.default
        self.factory = info.default_factory

    def fresh_default(self) -> Any:
        if self.factory is not None:
            return self.factory()
        if isinstance(self.default, _IMMUTABLE):
            return self.default
        return copy.deepcopy(self.default)


class _Plan:
    __slots__ = ("after", "before", "extra", "slots")

    def __init__(self) -> None:
        self.slots: list[_Slot] = []
        self.before: list[Callable[[Any], Any]] = []
        self.after: list[str] = []
        self.extra = "ignore"


class _ModelMeta(type):
    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> _ModelMeta:
        config = dict(_DEFAULT_CONFIG)
        fields: dict[str, FieldInfo] = {}
        sources: dict[str, tuple[Any, str]] = {}
        validators: dict[str, Decorated] = {}
        for base in reversed(bases):
            if isinstance(base, _ModelMeta):
                config.update(base.model_config)
                fields.update(base.__model_fields__)
                sources.update(base.__model_sources__)
                validators.update(base.__model_validators__)
        config.update(namespace.get("model_config") or {})
        for attr, value in list(namespace.items()):
            if isinstance(value, Decorated):
                validators[attr] = value
                namespace[attr] = value.func
        annotations = namespace.get("__annotations__") or {}
        for attr in namespace:
            if attr in fields and attr not in annotations:
                raise TypeError(
                    f"{name}.{attr} overrides a field without a type annotation; "
                    f"declare it as {attr}: <type> = ..."
                )
        generate = config["alias_generator"]
        for field, annotation in annotations.items():
            if field.startswith("_") or _is_classvar(annotation):
                continue
            value = namespace.pop(field, MISSING)
            info = value.copy() if isinstance(value, FieldInfo) else FieldInfo(value)
            if info.alias is None and generate is not None:
                info.alias = generate(field)
            fields[field] = info
            sources[field] = (annotation, namespace["__module__"])
        namespace["model_config"] = config
        namespace["__model_fields__"] = fields
        namespace["__model_sources__"] = sources
        namespace["__model_validators__"] = validators
        namespace["__model_plan__"] = None
        namespace["__model_locals__"] = _defining_locals(namespace)
        if config["frozen"]:
            namespace.setdefault("__hash__", _frozen_hash)
        return super().__new__(mcs, name, bases, namespace, **kwargs)


def _is_classvar(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return bool(_CLASSVAR.match(annotation))
    return annotation is ClassVar or getattr(annotation, "__origin__", None) is ClassVar


def _defining_locals(namespace: dict[str, Any]) -> dict[str, Any]:
    """A class defined inside a function may name that function's locals."""
    if "<locals>" not in namespace.get("__qualname__", ""):
        return {}
    try:
        return dict(sys._getframe(2).f_locals)
    except (AttributeError, ValueError):  # not CPython, or no such frame
        return {}


def _frozen_hash(self: BaseModel) -> int:
    values = self.__dict__
    return hash((type(self), *(_hashable(values.get(f)) for f in type(self).__model_fields__)))


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):  # equal dicts may differ in order: hash them as a set
        return frozenset((k, _hashable(v)) for k, v in value.items())
    return value


def _plan(cls: type[BaseModel]) -> _Plan:
    plan = cls.__dict__.get("__model_plan__")
    if plan is not None:
        return plan
    plan = _Plan()
    plan.extra = cls.model_config["extra"]
    by_name = cls.model_config["populate_by_name"]
    resolved: dict[str, FieldInfo] = {}
    scopes: dict[str, dict[str, Any]] = {}
    for name, info in cls.__model_fields__.items():
        annotation, module = cls.__model_sources__[name]
        info = info.copy()
        info.annotation = _resolve(cls, annotation, module, scopes)
        _take_annotated(info, name, cls.model_config["alias_generator"])
        resolved[name] = info
        plan.slots.append(_Slot(name, info, by_name))
    slots = {slot.name: slot for slot in plan.slots}
    for attr, decorated in cls.__model_validators__.items():
        bound = getattr(cls, attr)
        if decorated.kind == "model":
            if decorated.mode == "before":
                plan.before.append(bound)
            else:
                plan.after.append(attr)
            continue
        for field in decorated.fields:
            if field not in slots:
                raise TypeError(f"{cls.__name__}.{attr} validates unknown field {field!r}")
            getattr(slots[field], decorated.mode).append(bound)
    type.__setattr__(cls, "__model_resolved__", resolved)
    type.__setattr__(cls, "__model_plan__", plan)
    return plan


def _take_annotated(info: FieldInfo, name: str, generate: Callable[[str], str] | None) -> None:
    """``x: Annotated[T, Field(...)]``: that ``Field``'s names, documentation and default
    count as the field's own (its constraints are applied with the type)."""
    if typing.get_origin(info.annotation) is not typing.Annotated:
        return
    for extra in info.annotation.__metadata__:
        if not isinstance(extra, FieldInfo):
            continue
        for attr in ("validation_alias", "description", "title", "examples"):
            if getattr(info, attr) is None:
                setattr(info, attr, getattr(extra, attr))
        generated = generate(name) if generate is not None else None
        if extra.alias is not None and info.alias in (None, generated):
            info.alias = extra.alias
        if info.is_required() and not extra.is_required():
            info.default, info.default_factory = extra.default, extra.default_factory


def _resolve(cls: type, annotation: Any, module: str, scopes: dict[str, dict[str, Any]]) -> Any:
    """``annotation`` evaluated where it was written (one scope per module, kept in
    ``scopes`` for the class's other fields)."""
    scope = scopes.get(module)
    if scope is None:
        scope = dict(vars(sys.modules[module])) if module in sys.modules else {}
        for klass in reversed(cls.__mro__):
            scope.update(getattr(klass, "__model_locals__", None) or {})
        scope.setdefault(cls.__name__, cls)
        scopes[module] = scope

    def evaluate(text: str) -> Any:
        try:
            return eval(text, scope)  # noqa: S307 - a class's own annotation text
        except NameError as exc:
            raise TypeError(
                f"{cls.__qualname__}: cannot resolve annotation {text!r}: {exc}"
            ) from None

    return _unquoted(annotation, evaluate)


def _unquoted(tp: Any, evaluate: Callable[[str], Any]) -> Any:
    """``tp`` with every quoted name in it (``list["Node"]``) evaluated."""
    if isinstance(tp, str):
        return _unquoted(evaluate(tp), evaluate)
    if isinstance(tp, typing.ForwardRef):
        return _unquoted(evaluate(tp.__forward_arg__), evaluate)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if not args or origin is typing.Literal:
        return tp
    if origin is typing.Annotated:
        return typing.Annotated[_unquoted(args[0], evaluate), *tp.__metadata__]
    resolved = tuple(_unquoted(arg, evaluate) for arg in args)
    if resolved == args:
        return tp
    if origin in (typing.Union, types.UnionType):
        return typing.Union[resolved]  # noqa: UP007 - built from a tuple of members
    return origin[resolved]


def _run(func: Callable[[Any], Any], value: Any) -> Any:
    """Call a user validator; its ``ValueError``/``AssertionError`` becomes a detail."""
    try:
        return func(value)
    except ValidationError as exc:
        raise Invalid(exc.errors()) from None
    except ValueError as exc:
        raise fail("value_error", f"Value error, {exc}", value, {"error": str(exc)}) from None
    except AssertionError as exc:
        raise fail(
            "assertion_error", f"Assertion failed, {exc}", value, {"error": str(exc)}
        ) from None


class _FieldsView:
    """``Model.model_fields``: name → :class:`FieldInfo` with resolved annotations."""

    def __get__(self, instance: Any, owner: type[BaseModel]) -> dict[str, FieldInfo]:
        _plan(owner)
        return owner.__dict__["__model_resolved__"]


class BaseModel(metaclass=_ModelMeta):
    """Validated fields from a mapping: ``Model.model_validate(data)`` or ``Model(**data)``."""

    __slots__ = ("__dict__", "__model_extra__", "__model_fields_set__")
    model_config: ClassVar[dict[str, Any]]
    model_fields: ClassVar[dict[str, FieldInfo]] = _FieldsView()  # type: ignore[assignment]
    __model_fields__: ClassVar[dict[str, FieldInfo]]
    __model_sources__: ClassVar[dict[str, tuple[Any, str]]]
    __model_validators__: ClassVar[dict[str, Decorated]]

    def __init__(self, /, **data: Any) -> None:
        try:
            _fill(self, data)
        except Invalid as exc:
            raise ValidationError(type(self).__name__, exc.details) from None
        except RecursionError:
            raise _too_deep(type(self), data) from None

    @classmethod
    def model_validate(cls, obj: Any) -> Self:
        try:
            return cls.__validate_input__(obj)
        except Invalid as exc:
            raise ValidationError(cls.__name__, exc.details) from None
        except RecursionError:
            raise _too_deep(cls, obj) from None

    @classmethod
    def __validate_input__(cls, value: Any) -> Self:
        if isinstance(value, cls):
            return value
        instance = object.__new__(cls)
        return _fill(instance, value)

    @classmethod
    def model_json_schema(cls, by_alias: bool = True) -> dict[str, Any]:
        from moltbot.validation.jsonschema import model_schema

        return model_schema(cls, by_alias=by_alias)

    @property
    def model_fields_set(self) -> set[str]:
        return self.__model_fields_set__

    @property
    def model_extra(self) -> dict[str, Any] | None:
        return self.__model_extra__

    def model_dump(
        self,
        *,
        mode: str = "python",
        include: set[str] | None = None,
        exclude: set[str] | None = None,
        by_alias: bool = False,
        exclude_unset: bool = False,
        exclude_defaults: bool = False,
        exclude_none: bool = False,
    ) -> dict[str, Any]:
        options = (mode == "json", by_alias, exclude_unset, exclude_defaults, exclude_none)
        return _dump_model(self, options, include, exclude)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        clone = copy.deepcopy(self) if deep else copy.copy(self)
        if update:
            fields = type(self).__model_fields__
            for key, value in update.items():
                if key in fields:
                    clone.__dict__[key] = value
                    clone.__model_fields_set__.add(key)
                elif clone.__model_extra__ is not None:
                    clone.__model_extra__[key] = value
                    clone.__model_fields_set__.add(key)
                else:
                    clone.__dict__[key] = value
        return clone

    def __copy__(self) -> Self:
        clone = object.__new__(type(self))
        object.__setattr__(clone, "__dict__", dict(self.__dict__))
        extra = self.__model_extra__
        object.__setattr__(clone, "__model_extra__", None if extra is None else dict(extra))
        object.__setattr__(clone, "__model_fields_set__", set(self.__model_fields_set__))
        return clone

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        object.__setattr__(clone, "__dict__", copy.deepcopy(self.__dict__, memo))
        object.__setattr__(clone, "__model_extra__", copy.deepcopy(self.__model_extra__, memo))
        object.__setattr__(clone, "__model_fields_set__", set(self.__model_fields_set__))
        return clone

    def __getstate__(self) -> dict[str, Any]:
        return {
            "dict": self.__dict__,
            "extra": self.__model_extra__,
            "set": self.__model_fields_set__,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "__dict__", state["dict"])
        object.__setattr__(self, "__model_extra__", state["extra"])
        object.__setattr__(self, "__model_fields_set__", state["set"])

    def __getattr__(self, name: str) -> Any:
        try:
            extra = object.__getattribute__(self, "__model_extra__")
        except AttributeError:
            extra = None
        if extra is not None and name in extra:
            return extra[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        cls = type(self)
        if cls.model_config["frozen"]:
            raise _frozen(cls, name, value)
        if name in cls.__model_fields__:
            self.__dict__[name] = value
            self.__model_fields_set__.add(name)
        elif self.__model_extra__ is not None and not name.startswith("_"):
            self.__model_extra__[name] = value
            self.__model_fields_set__.add(name)
        elif name.startswith("_") or hasattr(cls, name):
            object.__setattr__(self, name, value)
        else:
            raise ValueError(f'"{cls.__name__}" object has no field "{name}"')

    def __delattr__(self, name: str) -> None:
        if type(self).model_config["frozen"]:
            raise _frozen(type(self), name, None)
        if self.__model_extra__ is not None and name in self.__model_extra__:
            del self.__model_extra__[name]
        else:
            object.__delattr__(self, name)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        mine, theirs = self.__dict__, other.__dict__  # type: ignore[attr-defined]
        return all(
            mine.get(name, MISSING) == theirs.get(name, MISSING)
            for name in type(self).__model_fields__
        ) and (self.__model_extra__ or {}) == (other.__model_extra__ or {})  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        fields = type(self).__model_fields__
        yield from ((k, v) for k, v in self.__dict__.items() if k in fields)
        yield from (self.__model_extra__ or {}).items()

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self)
        return f"{type(self).__name__}({shown})"

    def __str__(self) -> str:
        return " ".join(f"{k}={v!r}" for k, v in self)


def _too_deep(cls: type[BaseModel], value: Any) -> ValidationError:
    """A model that contains itself, nested deeper than Python's stack allows."""
    return ValidationError(
        cls.__name__,
        [
            {
                "type": "recursion_depth_exceeded",
                "loc": (),
                "msg": "Recursion error - maximum validation depth exceeded",
                "input": value,
            }
        ],
    )


def _frozen(cls: type[BaseModel], name: str, value: Any) -> ValidationError:
    return ValidationError(
        cls.__name__,
        [{"type": "frozen_instance", "loc": (name,), "msg": "Instance is frozen", "input": value}],
    )


def _fill(instance: BaseModel, value: Any) -> Any:
    cls = type(instance)
    plan = _plan(cls)
    original = value
    for before in plan.before:
        value = _run(before, value)
    if isinstance(value, cls):
        state = value.__getstate__()
        instance.__setstate__({**state, "dict": dict(state["dict"])})
        return instance
    if type(value) is not dict and not isinstance(value, Mapping):
        raise fail(
            "model_type",
            f"Input should be a valid dictionary or instance of {cls.__name__}",
            value,
            {"class_name": cls.__name__},
        )
    values: dict[str, Any] = {}
    given: set[str] = set()
    used: set[str] = set()
    problems: list[ErrorDetail] = []
    for slot in plan.slots:
        for key in slot.names:
            if key in value:
                break
        else:
            if slot.factory is None and slot.default is MISSING:
                problems.append(
                    {
                        "type": "missing",
                        "loc": (slot.names[0],),
                        "msg": "Field required",
                        "input": value,
                    }
                )
            else:
                values[slot.name] = slot.fresh_default()
            continue
        used.add(key)
        given.add(slot.name)
        raw = value[key]
        try:
            if slot.before:
                for before in slot.before:
                    raw = _run(before, raw)
            raw = slot.check(raw)
            if slot.after:
                for after in slot.after:
                    raw = _run(after, raw)
        except Invalid as exc:
            problems.extend(under(key, exc.details))
            continue
        values[slot.name] = raw
    extra: dict[str, Any] | None = None
    if plan.extra != "ignore":
        unknown = (
            {k: v for k, v in value.items() if k not in used} if len(used) < len(value) else {}
        )
        problems.extend(
            {
                "type": "invalid_key",
                "loc": (loc_part(k),),
                "msg": "Keys should be strings",
                "input": k,
            }
            for k in unknown
            if not isinstance(k, str)
        )
        if plan.extra == "allow":
            extra = unknown
        else:
            problems.extend(
                {
                    "type": "extra_forbidden",
                    "loc": (k,),
                    "msg": "Extra inputs are not permitted",
                    "input": v,
                }
                for k, v in unknown.items()
                if isinstance(k, str)
            )
    if problems:
        raise Invalid(problems)
    object.__setattr__(instance, "__dict__", values)
    object.__setattr__(instance, "__model_extra__", extra)
    object.__setattr__(instance, "__model_fields_set__", given | extra.keys() if extra else given)
    for attr in plan.after:
        try:
            result = getattr(instance, attr)()
        except ValidationError as exc:
            raise Invalid(exc.errors()) from None
        except ValueError as exc:
            raise fail(
                "value_error", f"Value error, {exc}", original, {"error": str(exc)}
            ) from None
        except AssertionError as exc:
            raise fail(
                "assertion_error", f"Assertion failed, {exc}", original, {"error": str(exc)}
            ) from None
        if isinstance(result, cls) and result is not instance:
            instance.__setstate__(result.__getstate__())
    return instance


_Options = tuple[bool, bool, bool, bool, bool]


def _dump_model(
    model: BaseModel, options: _Options, include: set[str] | None, exclude: set[str] | None
) -> dict[str, Any]:
    json_mode, by_alias, exclude_unset, exclude_defaults, exclude_none = options
    fields = type(model).model_fields
    fields_set = model.__model_fields_set__
    out: dict[str, Any] = {}
    for name, value in model.__dict__.items():
        if name not in fields:  # a private attribute, or a key model_copy(update=) added
            continue
        if (include is not None and name not in include) or (exclude and name in exclude):
            continue
        if exclude_unset and name not in fields_set:
            continue
        if exclude_none and value is None:
            continue
        info = fields[name]
        if exclude_defaults and value == (
            info.default_factory() if info.default_factory else info.default
        ):
            continue
        key = info.alias if by_alias and info.alias else name
        out[key] = _dump(value, options)
    for name, value in (model.__model_extra__ or {}).items():
        if (include is not None and name not in include) or (exclude and name in exclude):
            continue
        if exclude_none and value is None:
            continue
        out[name] = _dump(value, options)
    return out


def _dump(value: Any, options: _Options) -> Any:
    if isinstance(value, BaseModel):
        return _dump_model(value, options, None, None)
    if isinstance(value, dict):
        return {k: _dump(v, options) for k, v in value.items()}
    if isinstance(value, list):
        return [_dump(v, options) for v in value]
    if isinstance(value, tuple | set | frozenset):
        items = [_dump(v, options) for v in value]
        return items if options[0] else type(value)(items)
    if options[0] and hasattr(value, "value") and type(value).__module__ != "builtins":
        import enum

        if isinstance(value, enum.Enum):
            return value.value
    return value
