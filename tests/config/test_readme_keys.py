"""Every config key the README documents is owned by a schema.

Keys are read from the README itself: the first column of its key tables (where
``/ .token`` or ``/ allowHosts`` name siblings of the key before them) and every
inline ``a.b.c`` mention whose first part is a top-level config key (protocol
method names such as ``models.list`` and file names such as ``gateway.json`` are
not keys). For each key:

- the schema knows it (:func:`moltbot.config.schema.unknown_key` is ``None``, as
  ``config set`` asks) and *owns* it: the path ends on a declared field, not inside
  an open mapping that some module reads raw;
- one config holding every documented key at once validates in strict mode, in
  process and through ``moltbot config validate --strict``.

``channels.<name>`` is an open mapping of the gateway schema: its keys are owned by
the channel's own account model, so they are checked against that model, and the
sample config's channel sections are resolved by the channels' own validation.
"""

from __future__ import annotations

import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from moltbot.config.keypath import format_path
from moltbot.config.schema import Config, unknown_key
from moltbot.config.store import validate
from moltbot.validation import BaseModel, FieldInfo

README = Path(__file__).resolve().parents[2] / "README.md"
TOP_LEVEL = [field.alias or name for name, field in Config.model_fields.items()]
FILE_SUFFIXES = {"json", "jsonl", "json5", "lock", "log", "md", "service", "plist", "xml", "cmd"}
PLACEHOLDER = re.compile(r"^<\w+>$|^\*$")
PLACEHOLDER_VALUES = {"<id>": "lab", "<name>": "work", "<threadId>": "42"}
Path_ = tuple[str | int, ...]


# -- reading the README -------------------------------------------------------------


def _split(token: str) -> list[str | int]:
    """``a.b[].c`` → ``["a", "b", 0, "c"]``; placeholders stay as written."""
    keys: list[str | int] = []
    for part in token.split("."):
        name, brackets, _ = part.partition("[")
        keys.append(name)
        if brackets:
            keys.append(0)
    return keys


def _prose(text: str) -> str:
    return re.sub(r"```.*?```", "", text, flags=re.S)


def table_keys(text: str) -> tuple[set[Path_], set[tuple[str | None, str]]]:
    """Keys from the first column of every ``| key | ...`` table: (config paths,
    channel keys as (channel or None for every channel, key))."""
    config: set[Path_] = set()
    channel: set[tuple[str | None, str]] = set()
    heading = ""
    in_table = False
    for line in _prose(text).splitlines():
        if line.startswith("## "):
            heading = line[3:]
        if not line.startswith("|"):
            in_table = False
            continue
        first = line.strip("|").split("|")[0].strip()
        if first.lower() == "key":
            in_table = True
            continue
        if not in_table:
            continue
        channels_section = heading.startswith("Messaging channels")
        previous: list[str | int] | None = None
        for token in re.findall(r"`([^`]+)`", first):
            if token.startswith("."):
                assert previous is not None, line
                keys = [*previous[:-1], *_split(token[1:])]
            elif "." not in token and previous is not None:
                keys = [*previous[:-1], *_split(token)]
            else:
                keys = _split(token)
            previous = keys
            if channels_section and keys[0] not in TOP_LEVEL:
                if len(keys) > 1 and isinstance(keys[0], str) and keys[0] in channel_names():
                    channel.add((keys[0], ".".join(map(str, keys[1:]))))
                else:
                    channel.add((None, ".".join(map(str, keys))))
            else:
                config.add(tuple(keys))
    return config, channel


def inline_keys(text: str) -> set[Path_]:
    """``a.b.c`` mentions in backticks whose first part is a top-level config key."""
    tops = "|".join(TOP_LEVEL)
    pattern = re.compile(rf"(?<![\w/.<-])((?:{tops})(?:\.(?:<\w+>|\*|\w+)(?:\[\d*\])?)+)")
    methods = protocol_methods()
    found: set[Path_] = set()
    for span in re.findall(r"`([^`\n]+)`", _prose(text)):
        for token in pattern.findall(span):
            if token in methods or token.rsplit(".", 1)[-1] in FILE_SUFFIXES:
                continue
            found.add(tuple(_split(token)))
    return found


def protocol_methods() -> set[str]:
    from moltbot.gateway.methods.registry import load_families

    return set(load_families())


def channel_names() -> list[str]:
    from moltbot.channels.registry import names

    return names()


def documented() -> tuple[list[Path_], list[tuple[str | None, str]]]:
    text = README.read_text(encoding="utf-8")
    config, channel = table_keys(text)
    config |= inline_keys(text)
    return sorted(config, key=str), sorted(channel, key=str)


CONFIG_KEYS, CHANNEL_KEYS = documented()


def concrete(keys: Path_) -> list[str | int]:
    """Placeholders replaced by sample names; a trailing ``*`` ("any key of the section",
    as in ``wizard.*``) dropped: the section itself is the documented key."""
    if keys and keys[-1] == "*":
        keys = keys[:-1]
    return [PLACEHOLDER_VALUES.get(k, "work") if PLACEHOLDER.match(str(k)) else k for k in keys]


def channel_paths(keys: Path_) -> list[tuple[str, list[str | int]]]:
    """``channels.<name>.rest`` → [(channel, rest)] for the named channel, or for every
    channel when the README writes the placeholder."""
    name = str(keys[1])
    names = channel_names() if PLACEHOLDER.match(name) else [name]
    return [(n, concrete(keys[2:])) for n in names]


# -- walking the schema -------------------------------------------------------------


def _unwrap(annotation: Any) -> Any:
    """``X | None`` → ``X``; a union of a model and scalars → the model."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if models else (args[0] if len(args) == 1 else annotation)
    return annotation


def owner(keys: list[str | int]) -> tuple[Any, FieldInfo | None]:
    """(annotation, field) of the key path in :class:`Config`. Raises AssertionError
    naming the first part that is not a declared field (or lies in an open mapping)."""
    node: Any = Config
    field: FieldInfo | None = None
    for depth, key in enumerate(keys):
        node = _unwrap(node)
        origin = typing.get_origin(node)
        where = format_path(keys[: depth + 1])
        if origin is dict:
            value = typing.get_args(node)[1]
            assert value is not Any, f"{where} lies in an open mapping: the schema does not own it"
            node, field = value, None
        elif origin is list:
            assert isinstance(key, int), f"{where}: a list, indexed by number"
            node, field = typing.get_args(node)[0], None
        elif isinstance(node, type) and issubclass(node, BaseModel):
            fields = {
                (f.alias or n): f for n, f in type.__getattribute__(node, "model_fields").items()
            }
            assert key in fields, f"{where} is not declared by the schema"
            field = fields[str(key)]
            node = field.annotation
        else:
            raise AssertionError(f"{where}: {format_path(keys[:depth])} holds no keys")
    return node, field


def _loose(annotation: Any) -> bool:
    """Whether a value of this type is unchecked: ``Any``, or a list or mapping of ``Any``."""
    annotation = _unwrap(annotation)
    if annotation is Any:
        return True
    if typing.get_origin(annotation) in (list, dict):
        return typing.get_args(annotation)[-1] is Any
    return False


def sample(annotation: Any, field: FieldInfo | None) -> Any:
    """A valid value for the key: its schema example, its default when it has one, else
    one made from the type."""
    if field is not None and field.examples:
        return field.examples[0]
    if field is not None and not field.is_required():
        default = field.default_factory() if field.default_factory else field.default
        if isinstance(default, BaseModel):
            return default.model_dump(by_alias=True, exclude_none=True)
        if default is not None and default != []:
            return default
    annotation = _unwrap(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return typing.get_args(annotation)[0]
    if origin is list:  # one item, so that an item's own keys are validated too
        return [sample(typing.get_args(annotation)[0], None)]
    if origin is dict or annotation is Any:
        return {}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return required_of(annotation)
    floor = field.constraints.get("ge") if field else None
    made = {bool: True, int: floor or 1, float: float(floor or 1), str: "x"}
    assert annotation in made, f"no sample for {annotation}"
    return made[annotation]


def required_of(model: type[BaseModel]) -> dict[str, Any]:
    """The required keys of ``model`` with sample values."""
    return {
        field.alias or name: sample(field.annotation, field)
        for name, field in model.model_fields.items()
        if field.is_required()
    }


def put(data: dict[str, Any], keys: list[str | int], value: Any) -> None:
    """Set ``keys`` in ``data``, creating what is missing with its required keys."""
    node: Any = data
    for depth, key in enumerate(keys[:-1]):
        annotation, _ = owner(keys[: depth + 1])
        child = _unwrap(annotation)
        empty: Any
        if typing.get_origin(child) is list:
            empty = []
        elif isinstance(child, type) and issubclass(child, BaseModel):
            empty = required_of(child)
        else:
            empty = {}
        if isinstance(key, int):
            while len(node) <= key:
                node.append(empty)
        elif not isinstance(node.get(key), dict | list):
            node[key] = empty
        node = node[key]
    last = keys[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(value)
    else:
        node[last] = value


def sample_config() -> dict[str, Any]:
    """One config holding every documented key (deepest keys last, so that a key
    documented together with its section keeps the section's sample)."""
    data: dict[str, Any] = {}
    channel_keys: list[tuple[str, list[str | int]]] = []
    for keys in sorted(CONFIG_KEYS, key=len):
        path = concrete(keys)
        if path[0] == "channels" and len(path) > 1:
            channel_keys += channel_paths(keys)  # the channels' own models: below
            continue
        annotation, field = owner(path)
        if keys[-1] == "*":  # every key of the section
            model = _unwrap(annotation)
            value = {f.alias or n: sample(f.annotation, f) for n, f in model.model_fields.items()}
        else:
            value = sample(annotation, field)
        put(data, path, value)
    for name, key in CHANNEL_KEYS:
        for channel in [name] if name else channel_names():
            channel_keys.append((channel, concrete(tuple(_split(key)))))
    channels: dict[str, dict[str, Any]] = {name: {} for name in channel_names()}
    for channel, keys in channel_keys:
        if keys and keys[0] != "accounts":
            annotation, field = channel_owner(channel, keys)
            channels[channel][str(keys[0])] = sample(annotation, field)
    data["channels"] = channels
    return data


# -- channels -----------------------------------------------------------------------


def channel_owner(channel: str, keys: list[str | int]) -> tuple[Any, FieldInfo | None]:
    """(annotation, field) of a key of ``channels.<channel>`` in the channel's account
    model; (None, None) for a section key (``accounts``). Raises AssertionError."""
    from moltbot.channels.registry import manifest

    where = f"channels.{channel}.{format_path(keys)}"
    if keys[0] == "accounts":  # accounts.<id>[.key]: an account, with the same keys
        return channel_owner(channel, keys[2:]) if len(keys) > 2 else (None, None)
    model: type[BaseModel] = manifest(channel).load_config_model()
    fields = {(f.alias or n): f for n, f in model.model_fields.items()}
    assert keys[0] in fields, f"{where} is not declared by the {channel} account model"
    field = fields[str(keys[0])]
    assert len(keys) == 1, f"{where}: only first-level channel keys are checked"
    return field.annotation, field


# -- the tests ----------------------------------------------------------------------


def test_the_readme_documents_keys_here() -> None:
    """The extraction itself works: a few keys from each kind of place are found."""
    assert ("gateway", "auth", "password") in CONFIG_KEYS  # `gateway.auth.mode` / `.password`
    assert ("tools", "web", "fetch", "allowHosts") in CONFIG_KEYS  # `... allowPrivate` / `...`
    assert ("messages", "groupChat", "mentionPatterns") in CONFIG_KEYS  # inline mention
    assert ("session", "dmScope") in CONFIG_KEYS and ("bindings",) in CONFIG_KEYS
    assert ("telegram", "webhookSecret") in CHANNEL_KEYS and (None, "allowFrom") in CHANNEL_KEYS
    assert not any(k[0] == "models" and k[-1] == "list" for k in CONFIG_KEYS)  # a method
    assert ("gateway", "json") not in CONFIG_KEYS  # a file name
    assert len(CONFIG_KEYS) > 60 and len(CHANNEL_KEYS) > 15


@pytest.mark.parametrize("keys", CONFIG_KEYS, ids=lambda k: ".".join(map(str, k)))
def test_the_schema_owns_every_documented_key(keys: Path_) -> None:
    path = concrete(keys)
    assert unknown_key(path) is None
    if path[0] != "channels" or len(path) == 1:
        annotation, _ = owner(path)
        assert not _loose(annotation), f"{format_path(path)} is typed {annotation}: not owned"
        return
    for channel, rest in channel_paths(keys):  # the channel's own model owns the rest
        assert channel in channel_names(), f"channels.{channel}: no such channel"
        if rest:
            channel_owner(channel, rest)


@pytest.mark.parametrize(
    ("channel", "key"), CHANNEL_KEYS, ids=lambda v: str(v) if v is not None else "any"
)
def test_every_documented_channel_key_is_an_account_key(channel: str | None, key: str) -> None:
    for name in [channel] if channel else channel_names():
        channel_owner(name, concrete(tuple(_split(key))))


def test_a_config_with_every_documented_key_validates_strictly(
    tmp_path: Path, run_moltbot: Any
) -> None:
    from moltbot.channels.registry import resolve_accounts

    data = sample_config()
    config, warnings = validate(data, {}, "sample.json", strict=True)
    assert warnings == ()
    for name in channel_names():
        assert resolve_accounts(name, data["channels"], {})  # the channels' own validation
    path = tmp_path / "moltbot.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    result = run_moltbot("config", "validate", "--strict", env={"CLAWDBOT_CONFIG_PATH": str(path)})
    assert result.returncode == 0, result.stderr
