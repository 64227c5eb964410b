"""Rendering a changed config back to text, keeping what the user wrote.

:func:`render` turns ``original_text`` (which parses to ``original``) into text
that parses to ``data``. A file this module wrote itself (canonical 2-space
JSON) is simply re-dumped. Any other file — JSON5 with comments, unquoted keys,
single quotes, trailing commas, its own indentation — is patched: only the
spans of values that changed are replaced, new keys are inserted into the
deepest existing object with that object's indentation, and removed keys are
cut out together with their comma (and a comment on the same line). Comments,
key order, formatting and ``${VAR}`` references elsewhere in the file survive.

Every patched result is parsed again and must equal ``data``; when a patch is
not possible or does not verify, or the texts together exceed
:data:`PATCH_LIMIT_BYTES`, the result is plain 2-space JSON (the data is
never wrong, only the formatting is lost). Arrays whose length changes are
rewritten as a whole (comments inside such an array are lost).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
PATCH_LIMIT_BYTES = 256 * 1024
_RESERVED = frozenset({"true", "false", "null", "Infinity", "NaN"})


def render(original_text: str, original: dict[str, Any], data: dict[str, Any]) -> str:
    """Text for ``data``, patched into ``original_text`` where possible (see module doc)."""
    plain = dump(data)
    if not original_text.strip() or original_text == dump(original):
        return plain
    if len(original_text) + len(plain) > PATCH_LIMIT_BYTES:
        return plain  # json-five is too slow for this much text: plain JSON instead
    try:
        patched = _patch(original_text, original, data)
    except _CannotPatch:
        return plain
    return patched if patched is not None and _parses_to(patched, data) else plain


def dump(data: Any) -> str:
    """Canonical output: plain JSON, 2-space indent, trailing newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


class _CannotPatch(Exception):
    """A structure the patcher does not handle; the caller falls back to plain JSON."""


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class _Style:
    unit: str  # one indentation step
    bare_keys: bool  # the file writes identifier keys without quotes


def _patch(text: str, original: dict[str, Any], data: dict[str, Any]) -> str | None:
    from json5.loader import ModelLoader, loads  # json-five (imported lazily: slow import)
    from json5.model import JSONObject

    try:
        model = loads(text, loader=ModelLoader())
    except Exception:
        return None
    root = model.value
    if not isinstance(root, JSONObject) or not _same(_plain(root), original):
        return None
    patcher = _Patcher(text, _style(text, root))
    patcher.value(root, original, data)
    return patcher.apply()


def _parses_to(text: str, data: dict[str, Any]) -> bool:
    import json5

    try:
        return _same(json5.loads(text), data)
    except Exception:
        return False


class _Patcher:
    def __init__(self, text: str, style: _Style) -> None:
        self.text = text
        self.style = style
        self.edits: list[_Edit] = []

    def apply(self) -> str:
        ordered: list[_Edit] = []
        for edit in sorted(self.edits, key=lambda e: (e.start, e.end)):
            if ordered and edit.start < ordered[-1].end:
                previous = ordered[-1]
                if edit.text or previous.text:
                    raise _CannotPatch("overlapping edits")
                ordered[-1] = _Edit(previous.start, max(previous.end, edit.end), "")
            else:
                ordered.append(edit)
        out = self.text
        for edit in reversed(ordered):
            out = out[: edit.start] + edit.text + out[edit.end :]
        return out

    # -- values -----------------------------------------------------------------

    def value(self, node: Any, old: Any, new: Any) -> None:
        from json5.model import JSONArray, JSONObject

        if _same(old, new):
            return
        if isinstance(node, JSONObject) and isinstance(old, dict) and isinstance(new, dict):
            self.object(node, old, new)
        elif (
            isinstance(node, JSONArray)
            and isinstance(old, list)
            and isinstance(new, list)
            and len(old) == len(new)
        ):
            for item, old_item, new_item in zip(node.values, old, new, strict=True):
                self.value(item, old_item, new_item)
        else:
            self.replace(node, new)

    def object(self, node: Any, old: dict[str, Any], new: dict[str, Any]) -> None:
        names = [_key_name(key) for key in node.keys]
        if len(set(names)) != len(names):
            raise _CannotPatch("duplicate keys")
        pairs = list(zip(node.keys, node.values, strict=True))
        for name, (_, value_node) in zip(names, pairs, strict=True):
            if name in new:
                self.value(value_node, old[name], new[name])
        removed = [i for i, name in enumerate(names) if name not in new]
        kept = [i for i, name in enumerate(names) if name in new]
        added = [(name, value) for name, value in new.items() if name not in old]
        trailing = node.trailing_comma is not None
        last_kept = kept[-1] if kept else None
        for index in removed:
            key, value = pairs[index]
            value_end = _span(value)[1]
            if index < len(pairs) - 1 or trailing:
                comma = self.comma_after(value_end, node)
                if comma is None:
                    raise _CannotPatch("no comma after a pair")
                self.delete(key._tok.index, comma + 1)
                continue
            # The last pair, without a comma after it.
            self.delete(key._tok.index, value_end)
            if not added and last_kept is not None:
                # The last kept pair becomes the last one: drop its separator.
                separator = self.comma_after(_span(pairs[last_kept][1])[1], node)
                if separator is None:
                    raise _CannotPatch("no separator before the last pair")
                self.edits.append(_Edit(separator, separator + 1, ""))
        if added:
            self.insert_pairs(node, pairs, last_kept, added, trailing=trailing)

    def delete(self, start: int, end: int) -> None:
        """Delete ``start:end``; whole lines when it fills them (with a trailing // comment)."""
        line_start = self.text.rfind("\n", 0, start) + 1
        line_end = self.text.find("\n", end)
        line_end = len(self.text) if line_end < 0 else line_end
        rest = self.text[end:line_end].strip()
        if not self.text[line_start:start].strip() and (not rest or rest.startswith("//")):
            start, end = line_start, min(line_end + 1, len(self.text))
        self.edits.append(_Edit(start, end, ""))

    def insert_pairs(
        self,
        node: Any,
        pairs: list[Any],
        last: int | None,
        added: list[tuple[str, Any]],
        *,
        trailing: bool,
    ) -> None:
        open_brace, close = node._tok.index, node._end_tok.index
        open_indent = self.line_indent(open_brace)
        if last is None:
            if self.text[open_brace + 1 : close].strip():  # comments (or removed pairs)
                self.insert_before_close(node, open_indent + self.style.unit, added, trailing=False)
            else:
                self.replace(node, dict(added))
            return
        key, value = pairs[last]
        last_end = _span(value)[1]
        closing_line = self.text[self.text.rfind("\n", 0, close) + 1 : close]
        if closing_line.strip() or "\n" not in self.text[last_end:close]:
            # A one-line object: `{a: 1}` -> `{a: 1, b: 2}`.
            entries = ", ".join(self.entry(name, item, None) for name, item in added)
            self.edits.append(_Edit(last_end, last_end, ", " + entries))
            return
        indent = self.line_indent(key._tok.index)
        if self.text[self.text.rfind("\n", 0, key._tok.index) + 1 : key._tok.index].strip():
            indent = open_indent + self.style.unit  # keys do not start their lines
        if last == len(pairs) - 1 and not trailing:
            self.edits.append(_Edit(last_end, last_end, ","))
        self.insert_before_close(node, indent, added, trailing=trailing)

    def insert_before_close(
        self, node: Any, indent: str, added: list[tuple[str, Any]], *, trailing: bool
    ) -> None:
        close = node._end_tok.index
        lines = [indent + self.entry(name, value, indent) for name, value in added]
        body = ",\n".join(lines) + ("," if trailing else "")
        line_start = self.text.rfind("\n", 0, close) + 1
        if not self.text[line_start:close].strip():
            self.edits.append(_Edit(line_start, line_start, body + "\n"))
        else:
            closing_indent = self.line_indent(node._tok.index)
            self.edits.append(_Edit(close, close, "\n" + body + "\n" + closing_indent))

    def replace(self, node: Any, value: Any) -> None:
        start, end = _span(node)
        line_end = self.text.find("\n", end)
        rest = self.text[end : len(self.text) if line_end < 0 else line_end].strip()
        inline = bool(rest.lstrip(",").strip()) and not rest.lstrip(",").strip().startswith("//")
        indent = None if inline else self.line_indent(start)
        text = self.format(value, indent)
        if isinstance(value, str) and self.text.startswith("'", start):
            text = "'" + text[1:-1].replace("'", "\\'") + "'"  # the string's own quotes
        self.edits.append(_Edit(start, end, text))

    # -- text helpers -----------------------------------------------------------

    def comma_after(self, position: int, node: Any) -> int | None:
        """Index of the ',' that follows ``position`` inside ``node`` (skipping comments)."""
        limit = node._end_tok.index
        i = position
        while i < limit:
            char = self.text[i]
            if char == ",":
                return i
            if self.text.startswith("//", i):
                newline = self.text.find("\n", i)
                i = limit if newline < 0 else newline + 1
            elif self.text.startswith("/*", i):
                closing = self.text.find("*/", i + 2)
                if closing < 0:
                    raise _CannotPatch("unterminated block comment")
                i = closing + 2
            elif char.isspace():
                i += 1
            else:
                return None
        return None

    def line_indent(self, position: int) -> str:
        line_start = self.text.rfind("\n", 0, position) + 1
        line = self.text[line_start:position]
        return line[: len(line) - len(line.lstrip())]

    def entry(self, name: str, value: Any, indent: str | None) -> str:
        return f"{self.key(name)}: {self.format(value, indent)}"

    def key(self, name: str) -> str:
        bare = self.style.bare_keys and _IDENTIFIER.match(name) and name not in _RESERVED
        return name if bare else json.dumps(name, ensure_ascii=False)

    def format(self, value: Any, indent: str | None) -> str:
        """``value`` as JSON5 text in this file's style: nested lines indented from
        ``indent``, or all on one line when ``indent`` is None (inside a one-line object)."""
        if isinstance(value, dict | list) and not value:
            return "{}" if isinstance(value, dict) else "[]"
        if isinstance(value, dict | list):
            inner = None if indent is None else indent + self.style.unit
            if isinstance(value, dict):
                items = [self.entry(k, v, inner) for k, v in value.items()]
                opening, closing = "{", "}"
            else:
                items = [self.format(item, inner) for item in value]
                opening, closing = "[", "]"
            if indent is None:
                pad = " " if isinstance(value, dict) else ""
                return opening + pad + ", ".join(items) + pad + closing
            body = ",\n".join(f"{inner}{item}" for item in items)
            return f"{opening}\n{body}\n{indent}{closing}"
        return json.dumps(value, ensure_ascii=False)


def _style(text: str, root: Any) -> _Style:
    from json5.model import Identifier, JSONObject, walk

    bare = any(
        isinstance(key, Identifier)
        for node in walk(root)
        if isinstance(node, JSONObject)
        for key in node.keys
    )
    unit = "  "
    for key in root.keys:
        line_start = text.rfind("\n", 0, key._tok.index) + 1
        prefix = text[line_start : key._tok.index]
        if prefix and not prefix.strip():
            unit = prefix
            break
    return _Style(unit=unit, bare_keys=bare)


def _span(node: Any) -> tuple[int, int]:
    return node._tok.index, node._end_tok.end


def _key_name(key: Any) -> str:
    from json5.model import Identifier

    return key.name if isinstance(key, Identifier) else key.characters


def _plain(node: Any) -> Any:
    """The plain value of a model node (what ``json5.loads`` returns for it)."""
    from json5.model import JSONArray, JSONObject, String, UnaryOp

    if isinstance(node, JSONObject):
        return {_key_name(k): _plain(v) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, JSONArray):
        return [_plain(v) for v in node.values]
    if isinstance(node, String):
        return node.characters
    if isinstance(node, UnaryOp):
        inner = _plain(node.value)
        return -inner if node.op == "-" else inner
    return node.value


def _same(a: Any, b: Any) -> bool:
    """Deep equality that also tells ``1``, ``1.0`` and ``True`` apart."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and a != a:
        return b != b  # NaN
    return bool(a == b)
