"""Reading and writing the config file.

Reads never fail silently: a syntax error names the file, line and column; a
schema error names the key path and what was expected. Writes are safe against
concurrent writers and crashes:

- an exclusive OS lock on ``<config>.lock`` serialises moltbot writers;
- the content hash read under the lock is compared again just before the rename,
  so an editor that saved meanwhile is never overwritten (the write is retried,
  or refused with :class:`ConflictError` when the caller passed ``base_hash``);
- the new content goes to a temp file in the same directory, is fsync'd and
  renamed over the old one, and the previous version is kept as ``<config>.bak``
  and in the instance's config history (:mod:`moltbot.config.history`), with who
  wrote the new one (``author``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from moltbot import __version__
from moltbot.config import edit
from moltbot.config.envsubst import substitute
from moltbot.config.keypath import format_path
from moltbot.errors import ConfigError, ConflictError, MoltbotError
from moltbot.fsutil import acquire_lock, write_atomic

if TYPE_CHECKING:  # the models are imported on first validation: reading raw stays fast
    from moltbot.config.schema import Config
    from moltbot.validation import ValidationError

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ConfigSnapshot:
    """One read of the config file. ``data`` is as written (``${VAR}`` kept);
    ``config`` is validated with variables substituted."""

    path: Path
    exists: bool
    raw: str
    hash: str | None
    data: dict[str, Any]
    config: Config
    warnings: tuple[str, ...] = field(default=())


def content_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


MAX_CONFIG_BYTES = 2 * 1024 * 1024
MAX_JSON5_BYTES = 1024 * 1024
MAX_DEPTH = 64
"""Limits for config text: a config is never this big or deep, and json-five's
parser is slow and recursive (a deep or huge JSON5 text would take seconds and
hundreds of MiB). Plain JSON takes the fast C parser up to ``MAX_CONFIG_BYTES``."""


def parse_text(text: str, source: str) -> dict[str, Any]:
    """Parse JSON5 text into plain data; the top level must be an object.

    Plain JSON (what moltbot writes) takes the fast standard-library path; JSON5
    (comments, unquoted keys, trailing commas) goes through json-five. A syntax
    error names ``source:line:column`` and what was found and expected there.
    Text over the limits above (size, nesting depth) is refused with
    :class:`ConfigError` before any parsing. Keys are always plain ``str``.
    """
    if not text.strip():
        return {}
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(
            f"{source}: the config is {len(text)} bytes; the limit is {MAX_CONFIG_BYTES}",
            hint="a config this large is a mistake: remove what does not belong there",
        )
    try:
        data = json.loads(text)
    except RecursionError:
        raise _too_deep(source) from None
    except ValueError:
        data = _parse_json5(text, source)
    else:
        if depth(data) > MAX_DEPTH:
            raise _too_deep(source)
    if not isinstance(data, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean"}.get(type(data), "a value")
        raise ConfigError(
            f"{source}: the config must be a JSON5 object {{...}}, got {kind}",
            hint="wrap the settings in { }",
        )
    return data


def _parse_json5(text: str, source: str) -> Any:
    import json5  # json-five

    if len(text) > MAX_JSON5_BYTES:
        raise ConfigError(
            f"{source}: JSON5 text over {MAX_JSON5_BYTES} bytes is not parsed",
            hint="write it as plain JSON (no comments, quoted keys), which has no such limit",
        )
    if json5_depth(text) > MAX_DEPTH:
        raise _too_deep(source)
    try:
        data = json5.loads(text)
    except RecursionError:
        raise _too_deep(source) from None
    except Exception as exc:  # json-five raises JSON5DecodeError (and others on odd input)
        raise _syntax_error(exc, text, source) from None
    # json-five returns identifier keys as a str subclass; make every key a plain str
    return json.loads(json.dumps(data))


def _too_deep(source: str) -> ConfigError:
    return ConfigError(
        f"{source}: objects and arrays are nested more than {MAX_DEPTH} levels deep",
        hint="a config is never nested this deep: check the brackets",
    )


def depth(value: Any) -> int:
    """Nesting depth of parsed data (iterative: safe on any input)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            items: Any = item.values()
        elif isinstance(item, list):
            items = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in items)
    return deepest


_STRUCTURE = re.compile(
    r"""[\[\]{}]|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|//[^\n]*|/\*.*?\*/""", re.S
)


def json5_depth(text: str) -> int:
    """The bracket nesting depth of JSON5 text, ignoring strings and comments; a
    linear scan, so the limit is checked before the recursive parser runs."""
    if text.count("{") + text.count("[") <= MAX_DEPTH:
        return 0
    depth = deepest = 0
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token in ("{", "["):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif token in ("}", "]"):
            depth -= 1
    return deepest


_TOKEN_NAMES = {
    "COMMA": "','",
    "COLON": "':'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LBRACKET": "'['",
    "RBRACKET": "']'",
    "value": "a value",
    "NAME": "a key",
    "$end": "end of file",
}


def _syntax_error(exc: Exception, text: str, source: str) -> ConfigError:
    """A ConfigError for a json-five decode error: ``file:line:col: what went wrong``."""
    message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    primary = re.search(r"The primary error was: \s*\n\t(.*)", message)
    if primary:
        message = primary.group(1)
    token = getattr(exc, "token", None)
    index: int | None = getattr(token, "index", None)
    found = getattr(token, "value", None)
    illegal = re.search(r"Illegal character (.+?) at index (\d+)", message)
    expected = re.search(r"Was expecting (.+?)(?: in or near|$)", message)
    if illegal:
        index, what = int(illegal.group(2)), f"unexpected character {illegal.group(1)}"
    elif "unexpected eof" in message.lower():
        index, what = len(text.rstrip()), "unexpected end of file"
    elif "multiple trailing commas" in message:
        what = "unexpected ',' (two commas in a row)"
    elif "Octals are not allowed" in message:
        what = f"invalid number {found!r}: leading zeros are not allowed"
    elif found:
        shown = str(found).splitlines()[0][:30]
        what = f"unexpected {shown!r}"
        if "UNTERMINATED" in message:
            what, expected = "unterminated string (missing closing quote)", None
    else:
        what = (
            re.sub(r"\s*in or near token.*$", "", message).removeprefix("Syntax Error").strip(".: ")
            or "invalid JSON5"
        )
    if expected:
        names = [_TOKEN_NAMES.get(n.strip(), n.strip()) for n in expected.group(1).split(" or ")]
        what += f", expected {' or '.join(dict.fromkeys(names))}"
    where, location = source, None
    if index is not None:
        line = text.count("\n", 0, index) + 1
        column = index - text.rfind("\n", 0, index)
        where, location = (
            f"{source}:{line}:{column}",
            {"file": source, "line": line, "column": column},
        )
    return ConfigError(
        f"config syntax error at {where}: {what}",
        hint="fix the file, then run `moltbot config validate`",
        details=location,
    )


class InvalidConfig(ConfigError):
    """The config does not validate (the message lists each problem), or a write would
    leave it invalid. A gateway method answers it in upstream's words: ``invalid
    config``, the problems in ``details.issues``."""

    def error_shape(self) -> dict[str, Any]:
        shape = super().error_shape()
        shape.update(message="invalid config", details={"issues": self.message})
        return shape


def validate(
    data: Mapping[str, Any],
    env: Mapping[str, str],
    source: str,
    *,
    strict: bool | None = None,
    missing_env: Literal["error", "keep"] = "error",
) -> tuple[Config, tuple[str, ...]]:
    """Substitute ``${VAR}`` references and validate against the schema.

    Unknown keys are warnings unless ``strict`` (or the file's own ``strict: true``).
    ``missing_env="keep"`` leaves references to unset variables as written instead
    of failing (used for writes and for reading other instances' files).
    """
    from moltbot.config.schema import Config, unknown_keys
    from moltbot.validation import ValidationError

    resolved = substitute(dict(data), env, source, missing=missing_env)
    try:
        config = Config.model_validate(resolved)
    except ValidationError as exc:
        raise InvalidConfig(
            _describe_validation(exc, source),
            hint="fix the file, then run `moltbot config validate`",
        ) from None
    unknown = unknown_keys(config)
    if unknown and (strict if strict is not None else config.strict):
        lines = "\n".join(f"  - {key}: unknown key" for key in unknown)
        raise InvalidConfig(
            f"invalid config at {source} (strict: unknown keys are errors):\n{lines}",
            hint='remove or fix these keys, or set "strict": false',
        )
    warnings = tuple(f"{source}: unknown key {key} (ignored)" for key in unknown)
    return config, warnings


def _describe_validation(exc: ValidationError, source: str) -> str:
    """One line per key path: ``  - gateway.port: expected ... (got ...)``.

    Alternatives of a union (``"provider/model" or {primary, fallbacks}``) are
    joined into one line.
    """
    problems: dict[str, tuple[list[str], str]] = {}
    for error in exc.errors():
        location = [part for part in error["loc"] if not _is_union_tag(part)]
        got = error.get("input")
        shown = "" if isinstance(got, dict | list) else f" (got {json.dumps(got, default=str)})"
        if error["type"] == "missing":
            shown = ""
        message = _expectation(error)
        messages, _ = problems.setdefault(format_path(location), ([], shown))
        if message not in messages:
            messages.append(message)
    lines = []
    for path, (messages, shown) in problems.items():
        joined = " or ".join(
            m.removeprefix("expected ") if i else m for i, m in enumerate(messages)
        )
        lines.append(f"  - {path}: {joined}{shown}")
    return f"invalid config at {source}:\n" + "\n".join(lines)


def _expectation(error: Any) -> str:
    message = str(error["msg"])
    if error["type"] == "missing":
        return "required key is missing"
    if message.startswith("Input should be "):
        wanted = re.sub(
            r"a valid dictionary( or instance of \w+)?",
            "an object",
            message.removeprefix("Input should be "),
        )
        wanted = wanted.replace("a valid integer", "an integer").replace("a valid ", "a ")
        if wanted.startswith(("less than", "greater than")):
            wanted = "a value " + wanted
        return "expected " + wanted
    if error["type"] == "string_pattern_mismatch":
        return f"expected a string matching {error.get('ctx', {}).get('pattern')}"
    return message


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (
        part in ("str", "int", "bool") or "[" in part or part[:1].isupper()
    )


def read_text(path: Path) -> str:
    """The config file's text. ``FileNotFoundError`` passes through; anything else
    unreadable (permissions, a directory, not UTF-8) is a :class:`ConfigError`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            f"config {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}, "
            f"column {column})",
            hint="save the file as UTF-8 (or restore the previous version from "
            f"{path.name}.bak), then run `moltbot config validate`",
            details={"file": str(path), "line": line, "column": column},
        ) from None


def read_config(
    path: Path, env: Mapping[str, str], *, strict: bool | None = None
) -> ConfigSnapshot:
    """Read and validate the config. A missing file is an empty, valid config."""
    try:
        raw = read_text(path)
    except FileNotFoundError:
        from moltbot.config.schema import Config

        return ConfigSnapshot(path, False, "", None, {}, Config())
    data = parse_text(raw, str(path))
    config, warnings = validate(data, env, str(path), strict=strict)
    return ConfigSnapshot(path, True, raw, content_hash(raw), data, config, warnings)


def read_raw(path: Path) -> tuple[str, dict[str, Any]]:
    """The file's text and parsed data, without validation ('' and {} when missing)."""
    try:
        raw = read_text(path)
    except FileNotFoundError:
        return "", {}
    return raw, parse_text(raw, str(path))


@contextlib.contextmanager
def write_lock(path: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Exclusive cross-process lock for writers of ``path``."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = acquire_lock(lock_path, timeout)
    except TimeoutError:
        raise ConflictError(
            f"timed out after {timeout:.0f} s waiting for the config lock {lock_path}",
            hint="another moltbot process is writing the config; retry",
        ) from None
    try:
        yield
    finally:
        os.close(fd)


Mutation = Callable[[dict[str, Any]], None]


def update_config(
    path: Path,
    mutate: Mutation,
    env: Mapping[str, str],
    *,
    base_hash: str | None = None,
    strict: bool | None = None,
    check: Callable[[Config | None, Config], None] | None = None,
    author: str | None = None,
) -> ConfigSnapshot:
    """Apply ``mutate`` to the file's data and write the result atomically.

    ``mutate`` receives the data as written (``${VAR}`` references intact) and
    changes it in place. The result must validate, or nothing is written
    (:class:`ConfigError`, whose message says the file is unchanged). ``check``
    receives the configs before (``None`` when the file was invalid) and after, and may
    refuse the change by raising (it runs under the lock, before the write). With
    ``base_hash``, the file must still have that content hash (pass ``""`` for "the file
    must not exist yet"), else :class:`ConflictError`. The replaced text goes to the
    config history as written by ``author`` (default: see
    :func:`moltbot.config.history.current_writer`).
    """
    with write_lock(path):
        _remove_stale_temp_files(path)
        for _attempt in range(20):
            raw, data = read_raw(path)
            current_hash = content_hash(raw) if raw else ""
            if base_hash is not None and base_hash != current_hash:
                raise StaleWriteError(
                    f"{path} changed since it was read (hash {current_hash[:12] or 'none'}, "
                    f"expected {base_hash[:12] or 'none'}); reload and retry"
                )
            original = json.loads(json.dumps(data))
            mutate(data)
            data.setdefault("meta", {})
            if isinstance(data["meta"], dict):
                data["meta"]["lastTouchedVersion"] = __version__
                data["meta"]["lastTouchedAt"] = datetime.now(UTC).isoformat(timespec="seconds")
            try:
                config, warnings = validate(data, env, str(path), strict=strict, missing_env="keep")
                if check is not None:
                    check(_lenient(original, env, path), config)
            except MoltbotError as exc:
                raise _refused(exc, path) from None
            text = edit.render(raw, original, data)
            if _hash_of_file(path) != current_hash:
                continue  # someone outside the lock (an editor) saved meanwhile: redo
            _keep_history(path, raw, text, author, env)
            _atomic_write(path, text, keep_backup=bool(raw))
            return ConfigSnapshot(path, True, text, content_hash(text), data, config, warnings)
    raise ConflictError(f"{path} keeps changing under us; try again")


class StaleWriteError(ConflictError):
    """The file changed since the caller read it (its base hash no longer matches). A
    gateway method answers it in upstream's words: ``config changed since last load; ...``."""

    def error_shape(self) -> dict[str, Any]:
        shape = super().error_shape()
        shape["message"] = f"config changed since last load; {self.message}"
        return shape


def _lenient(data: dict[str, Any], env: Mapping[str, str], path: Path) -> Config | None:
    try:
        return validate(data, env, str(path), strict=False, missing_env="keep")[0]
    except ConfigError:
        return None


def _refused(exc: MoltbotError, path: Path) -> MoltbotError:
    """``exc`` restated for a write that did not happen: the file is unchanged. A config
    error of the result (schema, references) is :class:`InvalidConfig`."""
    message = exc.message.replace("invalid config at", "refused: the result would be invalid at", 1)
    hint = None if exc.hint and "fix the file" in exc.hint else exc.hint
    refused = InvalidConfig if isinstance(exc, ConfigError) else type(exc)
    return refused(f"{message}\n{path} is unchanged.", hint=hint)


def _keep_history(
    path: Path, previous: str | bytes, text: str, author: str | None, env: Mapping[str, str]
) -> None:
    """Record the write in the config history; a history that cannot be written is
    logged and never blocks the write (the ``.bak`` still holds the previous text)."""
    from moltbot.config import history

    try:
        history.record(path, previous, content_hash(text), history.current_writer(author), env)
    except OSError as exc:
        log.warning("config history of %s not kept: %s", path, exc)


def _remove_stale_temp_files(path: Path) -> None:
    """Temp files left by a writer that died mid-write (only writers holding the
    lock create them, and we hold it now)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # also .<name>.bak.*.tmp
        with contextlib.suppress(OSError):
            stale.unlink()


def _hash_of_file(path: Path) -> str:
    try:
        return content_hash(read_text(path))
    except FileNotFoundError:
        return ""


def _atomic_write(path: Path, text: str, *, keep_backup: bool) -> None:
    if keep_backup:
        write_atomic(path.with_name(path.name + ".bak"), path.read_bytes())
    write_atomic(path, text)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def parse_value(text: str) -> Any:
    """A command-line value as JSON5; anything that does not parse is a plain string."""
    import json5

    try:
        return json5.loads(text)
    except Exception:
        return text


def replace_config_text(
    path: Path,
    text: str,
    env: Mapping[str, str],
    *,
    base_hash: str | None = None,
    data: dict[str, Any] | None = None,
    check: Callable[[Config | None, Config], None] | None = None,
    author: str | None = None,
    missing_env: Literal["error", "keep"] = "error",
) -> ConfigSnapshot:
    """Write ``text`` as the whole config file (validated first, ``missing_env`` as in
    :func:`validate`; CAS, ``check`` and ``author`` like :func:`update_config`). ``data``
    is ``text`` already parsed, when the caller has it. The file it replaces may be
    broken (a syntax error, bytes that are not UTF-8): it is replaced whole, and its
    hash is that of its bytes (:func:`file_hash`)."""
    if data is None:
        data = parse_text(text, str(path))
    config, warnings = validate(data, env, str(path), missing_env=missing_env)
    with write_lock(path):
        previous = _read_bytes(path)
        current = hashlib.sha256(previous).hexdigest() if previous else ""
        if base_hash is not None and base_hash != current:
            raise StaleWriteError(f"{path} changed since it was read; reload and retry")
        if check is not None:
            try:
                check(_lenient_bytes(previous, env, path), config)
            except MoltbotError as exc:
                raise _refused(exc, path) from None
        _keep_history(path, previous, text, author, env)
        _atomic_write(path, text, keep_backup=bool(previous))
    return ConfigSnapshot(path, True, text, content_hash(text), data, config, warnings)


def file_hash(path: Path) -> str:
    """The content hash of the file's bytes (``''`` when it does not exist): equal to
    :func:`content_hash` of its text when it is UTF-8, defined for any file."""
    data = _read_bytes(path)
    return hashlib.sha256(data).hexdigest() if data else ""


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None


def _lenient_bytes(data: bytes, env: Mapping[str, str], path: Path) -> Config | None:
    """The config ``data`` holds, or ``None`` when it does not parse or validate."""
    try:
        parsed = parse_text(data.decode("utf-8"), str(path))
    except (UnicodeDecodeError, ConfigError):
        return None
    return _lenient(parsed, env, path)
