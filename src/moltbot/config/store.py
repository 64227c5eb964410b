"""Reading and writing the config file.

Reads never fail silently: a syntax error names the file, line and column; a
schema error names the key path and what was expected. Writes are safe against
concurrent writers and crashes:

- an exclusive OS lock on ``<config>.lock`` serialises moltbot writers;
- the content hash read under the lock is compared again just before the rename,
  so an editor that saved meanwhile is never overwritten (the write is retried,
  or refused with :class:`ConflictError` when the caller passed ``base_hash``);
- the new content goes to a temp file in the same directory, is fsync'd and
  renamed over the old one, and the previous version is kept as ``<config>.bak``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from moltbot import __version__
from moltbot.config import edit
from moltbot.config.envsubst import substitute
from moltbot.config.keypath import format_path
from moltbot.config.schema import Config, unknown_keys
from moltbot.errors import ConfigError, ConflictError

LOCK_TIMEOUT_S = 10.0


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


def parse_text(text: str, source: str) -> dict[str, Any]:
    """Parse JSON5 text into plain data; the top level must be an object."""
    import json5  # json-five: comment-preserving JSON5

    if not text.strip():
        return {}
    try:
        data = json5.loads(text)
    except Exception as exc:  # json-five raises its own decode error with positions
        line = getattr(exc, "lineno", None)
        column = getattr(exc, "colno", None)
        where = f"{source}:{line}:{column}" if line else source
        message = str(exc).split(" at: ")[0] if line else str(exc)
        raise ConfigError(f"config syntax error at {where}: {message}",
                          hint="fix the file, then run `moltbot config validate`") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a JSON5 object, got {type(data).__name__}")
    return data


def validate(
    data: Mapping[str, Any], env: Mapping[str, str], source: str, *, strict: bool | None = None
) -> tuple[Config, tuple[str, ...]]:
    """Substitute ``${VAR}`` references and validate against the schema.

    Unknown keys are warnings unless ``strict`` (or the file's own ``strict: true``).
    """
    resolved = substitute(dict(data), env, source)
    try:
        config = Config.model_validate(resolved)
    except ValidationError as exc:
        raise ConfigError(_describe_validation(exc, source),
                          hint="fix the file, then run `moltbot config validate`") from None
    unknown = unknown_keys(config)
    if unknown and (strict if strict is not None else config.strict):
        lines = "\n".join(f"  - {key}: unknown key" for key in unknown)
        raise ConfigError(f"invalid config at {source} (strict):\n{lines}")
    warnings = tuple(f"{source}: unknown key {key} (ignored)" for key in unknown)
    return config, warnings


def _describe_validation(exc: ValidationError, source: str) -> str:
    lines = []
    for error in exc.errors():
        location = [part for part in error["loc"] if not _is_union_tag(part)]
        got = error.get("input")
        shown = "" if isinstance(got, dict | list) else f" (got {json.dumps(got, default=str)})"
        lines.append(f"  - {format_path(location)}: {error['msg']}{shown}")
    return f"invalid config at {source}:\n" + "\n".join(dict.fromkeys(lines))


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (part in ("str", "int", "bool") or "[" in part
                                      or part[:1].isupper())


def read_config(
    path: Path, env: Mapping[str, str], *, strict: bool | None = None
) -> ConfigSnapshot:
    """Read and validate the config. A missing file is an empty, valid config."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ConfigSnapshot(path, False, "", None, {}, Config())
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    data = parse_text(raw, str(path))
    config, warnings = validate(data, env, str(path), strict=strict)
    return ConfigSnapshot(path, True, raw, content_hash(raw), data, config, warnings)


def read_raw(path: Path) -> tuple[str, dict[str, Any]]:
    """The file's text and parsed data, without validation ('' and {} when missing)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return "", {}
    return raw, parse_text(raw, str(path))


@contextlib.contextmanager
def write_lock(path: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Exclusive cross-process lock for writers of ``path``."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ConflictError(f"timed out waiting for the config lock {lock_path}") from None
                time.sleep(0.005)
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
) -> ConfigSnapshot:
    """Apply ``mutate`` to the file's data and write the result atomically.

    ``mutate`` receives the data as written (``${VAR}`` references intact) and
    changes it in place. The result must validate, or nothing is written
    (:class:`ConfigError`). With ``base_hash``, the file must still have that
    content hash (``None`` hash means "the file must not exist yet"... pass
    ``""`` for that), else :class:`ConflictError`.
    """
    with write_lock(path):
        for _attempt in range(20):
            raw, data = read_raw(path)
            current_hash = content_hash(raw) if raw else ""
            if base_hash is not None and base_hash != current_hash:
                raise ConflictError(
                    f"{path} changed since it was read (hash {current_hash[:12] or 'none'}, "
                    f"expected {base_hash[:12] or 'none'}); reload and retry"
                )
            original = json.loads(json.dumps(data))
            mutate(data)
            data.setdefault("meta", {})
            if isinstance(data["meta"], dict):
                data["meta"]["lastTouchedVersion"] = __version__
                data["meta"]["lastTouchedAt"] = datetime.now(UTC).isoformat(timespec="seconds")
            config, warnings = validate(data, env, str(path), strict=strict)
            text = edit.render(raw, original, data)
            if _hash_of_file(path) != current_hash:
                continue  # someone outside the lock (an editor) saved meanwhile: redo
            _atomic_write(path, text, keep_backup=bool(raw))
            return ConfigSnapshot(path, True, text, content_hash(text), data, config, warnings)
    raise ConflictError(f"{path} keeps changing under us; try again")


def _hash_of_file(path: Path) -> str:
    try:
        return content_hash(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ""


def _atomic_write(path: Path, text: str, *, keep_backup: bool) -> None:
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if keep_backup:
        _write_and_sync(path.with_name(path.name + ".bak"), path.read_bytes())
    _write_and_sync(path, text.encode())
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _write_and_sync(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def parse_value(text: str) -> Any:
    """A command-line value as JSON5; anything that does not parse is a plain string."""
    import json5

    try:
        return json5.loads(text)
    except Exception:
        return text
