"""``config.schema``: the config's JSON Schema in the shape upstream's Control UI renders.

The Control UI's Config form walks ``schema`` itself and does not resolve ``$ref``,
so every reference is inlined here; ``channels`` gets one property per channel
(its manifest's account config model), so each channel has its own editor.
Sections that keep unknown keys (``extra="allow"``) drop ``additionalProperties:
true`` here, which the form cannot edit (open maps keep it: they stay Raw-only).
``uiHints`` maps dotted paths (``gateway.auth.token``, ``channels.telegram``, ``*``
for map entries) to ``{label, help, group, order, sensitive}``: labels from the
field titles, help from their descriptions, ``sensitive`` for credentials.
"""

from __future__ import annotations

import re
from typing import Any

SENSITIVE = re.compile(r"(token|password|secret|api_?key|private_?key)$", re.IGNORECASE)
_MAX_DEPTH = 32

__all__ = ["build_schema"]


def build_schema() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``(schema, uiHints)`` for the current config model and channel manifests."""
    from moltbot.channels.registry import manifests
    from moltbot.config.schema import Config

    raw = Config.model_json_schema(by_alias=True)
    schema = inline(raw, raw.get("$defs", {}))
    channels: dict[str, Any] = {}
    for manifest in sorted(manifests().values(), key=lambda m: (m.order, m.id)):
        try:
            model = manifest.load_config_model()
        except Exception:  # noqa: BLE001 - a broken channel must not hide the whole form
            continue
        own = model.model_json_schema(by_alias=True)
        entry = inline(own, own.get("$defs", {}))
        entry["title"] = entry["x-label"] = manifest.label
        entry.setdefault("description", f"{manifest.detail} connection.")
        channels[manifest.id] = entry
    schema.setdefault("properties", {})["channels"] = {
        "type": "object",
        "title": "Channels",
        "description": "Messaging connections, one section per channel.",
        "properties": channels,
    }
    hints: dict[str, dict[str, Any]] = {}
    for order, (key, prop) in enumerate((schema.get("properties") or {}).items()):
        _hints(prop, key, key, hints, group=_label(key, prop), order=order, depth=0)
    return schema, hints


def inline(
    node: Any, defs: dict[str, Any], depth: int = 0, expanding: frozenset[str] = frozenset()
) -> Any:
    """``node`` with every ``{"$ref": "#/$defs/X"}`` replaced by a copy of ``X``; a model
    that contains itself (Telegram ``topics``) stops at the second level as an object
    to edit in Raw mode."""
    if depth > _MAX_DEPTH:
        return {"type": "object"}
    if isinstance(node, list):
        return [inline(item, defs, depth + 1, expanding) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        rest = {k: v for k, v in node.items() if k != "$ref"}
        if name in expanding:
            return {"type": "object", **rest}
        merged = {**defs.get(name, {}), **rest}
        return inline(merged, defs, depth + 1, expanding | {name})
    out = {k: inline(v, defs, depth + 1, expanding) for k, v in node.items() if k != "$defs"}
    return for_form(out)


def for_form(node: dict[str, Any]) -> dict[str, Any]:
    """What upstream's Config form can edit: it gives up on an object admitting any key
    (``additionalProperties: true``) and on a union of text and object. So a section that
    keeps unknown keys shows its known ones; an open map (``env``) becomes a map of JSON
    values; ``"provider/model"`` or ``{primary, fallbacks}`` is edited as the text (the
    object form stays available in Raw mode)."""
    if node.get("additionalProperties") is True:
        if node.get("properties"):
            del node["additionalProperties"]
        else:
            node["additionalProperties"] = {}
    options = node.get("anyOf")
    if isinstance(options, list):
        kinds = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
        text = [o for o in kinds if o.get("type") == "string"]
        if len(kinds) > 1 and len(text) == 1 and any(o.get("type") == "object" for o in kinds):
            nulls = [o for o in options if isinstance(o, dict) and o.get("type") == "null"]
            node["anyOf"] = [text[0], *nulls]
            node.setdefault("description", "")
            node["description"] = (
                node["description"] + " (The object form is accepted too: edit it in Raw mode.)"
            ).strip()
    return node


def _label(key: str, prop: dict[str, Any]) -> str:
    """The explicit label (channels), else the key in words: ``botToken`` → "Bot token"."""
    title = prop.get("x-label")
    if isinstance(title, str) and title:
        return title
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).replace("_", " ").lower()
    return words[:1].upper() + words[1:]


def _hints(
    prop: Any,
    key: str,
    path: str,
    hints: dict[str, dict[str, Any]],
    *,
    group: str,
    order: int,
    depth: int,
) -> None:
    if not isinstance(prop, dict) or depth > _MAX_DEPTH:
        return
    hint: dict[str, Any] = {"label": _label(key, prop), "group": group, "order": order}
    if isinstance(prop.get("description"), str):
        hint["help"] = prop["description"]
    if SENSITIVE.search(key):
        hint["sensitive"] = True
    hints[path] = hint
    for index, (child, sub) in enumerate((prop.get("properties") or {}).items()):
        _hints(sub, child, f"{path}.{child}", hints, group=group, order=index, depth=depth + 1)
    extra = prop.get("additionalProperties")
    if isinstance(extra, dict) and extra.get("properties"):
        _hints(extra, "*", f"{path}.*", hints, group=group, order=0, depth=depth + 1)
    for option in prop.get("anyOf") or ():
        if isinstance(option, dict) and option.get("properties"):
            for index, (child, sub) in enumerate(option["properties"].items()):
                if f"{path}.{child}" not in hints:
                    _hints(
                        sub,
                        child,
                        f"{path}.{child}",
                        hints,
                        group=group,
                        order=index,
                        depth=depth + 1,
                    )
