"""A model's JSON Schema (draft 2020-12): what the config forms and the LLM tool
descriptions are rendered from. Models become ``$defs`` entries referenced by
``$ref``; the top model is inlined unless it contains itself."""

from __future__ import annotations

import enum
import inspect
import re
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from moltbot.validation.fields import MISSING, AliasChoices, FieldInfo
from moltbot.validation.types import is_model, unwrap

_NONE = type(None)
_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}
_LIMITS = {
    "ge": "minimum",
    "gt": "exclusiveMinimum",
    "le": "maximum",
    "lt": "exclusiveMaximum",
    "pattern": "pattern",
}


def model_schema(cls: type, *, by_alias: bool = True) -> dict[str, Any]:
    defs: dict[str, dict[str, Any]] = {}
    _define(cls, defs, by_alias)
    names = _def_names(defs)
    key = _key(cls)
    top = defs[key]
    if _refers_to(defs, key):
        return _renamed({"$defs": defs, "$ref": f"#/$defs/{key}"}, names)
    del defs[key]
    return _renamed({"$defs": defs, **top} if defs else top, names)


_REF = "#/$defs/"


def _key(tp: type) -> str:
    """A class's definition while the schema is built: two classes may share a name."""
    return f"{tp.__module__}.{tp.__qualname__}@{id(tp)}"


def _def_names(defs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Each definition's final name, as pydantic gives it: the class name; for a name
    several classes share, module and qualified name; if those are shared too, numbered."""
    by_name: dict[str, list[str]] = {}
    for key, entry in defs.items():
        by_name.setdefault(entry["title"], []).append(key)
    names: dict[str, str] = {}
    for name, keys in by_name.items():
        if len(keys) == 1:
            names[keys[0]] = name
            continue
        by_path: dict[str, list[str]] = {}
        for key in keys:
            path = key.rpartition("@")[0].replace(".", "__")
            by_path.setdefault(re.sub(r"[^A-Za-z0-9_]", "_", path), []).append(key)
        for path, same in by_path.items():
            for number, key in enumerate(same, 1):
                names[key] = path if len(same) == 1 else f"{path}__{number}"
    return names


def _renamed(node: Any, names: dict[str, str]) -> Any:
    """``node`` with definitions and references to them under their final names."""
    if isinstance(node, dict):
        out = {k: _renamed(v, names) for k, v in node.items()}
        if "$defs" in out:
            out["$defs"] = {names[k]: v for k, v in out["$defs"].items()}
        return out
    if isinstance(node, list):
        return [_renamed(v, names) for v in node]
    if isinstance(node, str) and node.startswith(_REF):
        return _REF + names.get(node[len(_REF) :], node[len(_REF) :])
    return node


def _refers_to(defs: dict[str, Any], name: str) -> bool:
    target = f"#/$defs/{name}"

    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            return node.get("$ref") == target or any(walk(v) for v in node.values())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return False

    return walk(defs)


def _define(cls: Any, defs: dict[str, dict[str, Any]], by_alias: bool) -> dict[str, Any]:
    name = _key(cls)
    if name not in defs:
        defs[name] = {}  # placeholder: a model that contains itself refers to this entry
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field, info in cls.model_fields.items():
            key = _input_name(info, field) if by_alias else field
            properties[key] = _field(info, key, defs, by_alias)
            if info.is_required():
                required.append(key)
        entry: dict[str, Any] = {}
        extra = cls.model_config["extra"]
        if extra != "ignore":
            entry["additionalProperties"] = extra == "allow"
        doc = cls.__dict__.get("__doc__")
        if doc:
            entry["description"] = inspect.cleandoc(doc)
        entry["properties"] = properties
        if required:
            entry["required"] = required
        entry["title"] = cls.__name__
        entry["type"] = "object"
        defs[name].update(entry)
    return {"$ref": f"#/$defs/{name}"}


def _input_name(info: FieldInfo, field: str) -> str:
    """The name a schema of the input shows: the validation alias (its first choice) wins."""
    chosen = info.validation_alias
    if isinstance(chosen, AliasChoices):
        chosen = chosen.choices[0]
    return chosen or info.alias or field


def _field(info: FieldInfo, key: str, defs: dict[str, Any], by_alias: bool) -> dict[str, Any]:
    schema = _type(info.annotation, defs, by_alias, info.constraints, info.discriminator)
    out = dict(schema)
    if info.default_factory is None and info.default is not MISSING:
        out["default"] = _jsonable(info.default)
    if info.description:
        out["description"] = info.description
    if info.examples is not None:
        out["examples"] = info.examples
    if info.title or not _is_model_field(info.annotation):
        out["title"] = info.title or key.title().replace("_", " ")
    return out


def _is_model_field(annotation: Any) -> bool:
    """Whether the field is a model or enum (optional or not): a ``$ref`` without a title."""
    tp = unwrap(annotation)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not _NONE]
        return len(members) == 1 and _is_ref(unwrap(members[0])[0])
    return _is_ref(tp)


def _is_ref(tp: Any) -> bool:
    return is_model(tp) or _is_enum(tp)


def _is_enum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, enum.Enum)


def _type(
    tp: Any,
    defs: dict[str, Any],
    by_alias: bool,
    constraints: dict[str, Any] | None = None,
    discriminator: str | None = None,
) -> dict[str, Any]:
    tp, own, own_discriminator = unwrap(tp)
    limits = {**own, **(constraints or {})}
    discriminator = discriminator or own_discriminator
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not _NONE]
        if discriminator:
            options = [_type(m, defs, by_alias) for m in members]
            mapping = {}
            for member, option in zip(members, options, strict=True):
                field = unwrap(member)[0].model_fields[discriminator]
                for value in typing.get_args(unwrap(field.annotation)[0]):
                    mapping[str(value)] = option["$ref"]
            named = field.alias if by_alias and field.alias else discriminator
            union: dict[str, Any] = {
                "discriminator": {"mapping": mapping, "propertyName": named},
                "oneOf": options,
            }
        else:
            union = {"anyOf": [_type(m, defs, by_alias, limits) for m in members]}
        if len(members) < len(args):
            if discriminator:
                return {"anyOf": [union, {"type": "null"}]}
            union["anyOf"].append({"type": "null"})
        elif len(members) == 1:
            return union["anyOf"][0]
        return union
    schema = _plain(tp, origin, args, defs, by_alias)
    for name, keyword in _LIMITS.items():
        if name in limits:
            schema[keyword] = limits[name]
    for name in ("min_length", "max_length"):
        if name in limits:
            kind = schema.get("type")
            prefix = {"string": "Length", "array": "Items", "object": "Properties"}.get(
                kind, "Length"
            )
            schema[("min" if name == "min_length" else "max") + prefix] = limits[name]
    return schema


def _plain(
    tp: Any, origin: Any, args: tuple[Any, ...], defs: dict[str, Any], by_alias: bool
) -> dict[str, Any]:
    if tp is Any or tp is object:
        return {}
    if tp is None or tp is _NONE:
        return {"type": "null"}
    if tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    if is_model(tp):
        return _define(tp, defs, by_alias)
    if _is_enum(tp):
        if _key(tp) not in defs:
            values = [m.value for m in tp]
            doc = tp.__dict__.get("__doc__")
            described = {"description": inspect.cleandoc(doc)} if doc else {}
            defs[_key(tp)] = {
                **described,
                "enum": values,
                "title": tp.__name__,
                **_literal_type(values),
            }
        return {"$ref": f"#/$defs/{_key(tp)}"}
    if origin is typing.Literal:
        values = list(args)
        if len(values) == 1:
            return {"const": values[0], **_literal_type(values)}
        return {"enum": values, **_literal_type(values)}
    if origin in (dict, Mapping) or tp is dict:
        value = args[1] if args else Any
        items = _type(value, defs, by_alias)
        return {"additionalProperties": items if items else True, "type": "object"}
    if origin in (list, tuple, set, frozenset, Sequence) or tp in (list, tuple, set, frozenset):
        schema: dict[str, Any] = {
            "items": _type(args[0], defs, by_alias) if args else {},
            "type": "array",
        }
        if origin in (set, frozenset):
            schema["uniqueItems"] = True
        return schema
    return {}


def _literal_type(values: list[Any]) -> dict[str, Any]:
    kinds = {type(v) for v in values}
    if len(kinds) == 1 and (kind := kinds.pop()) in _SCALARS:
        return {"type": _SCALARS[kind]}
    return {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value
