"""Config methods: get (redacted), set/patch/apply (compare-and-swap), schema."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from moltbot.config.isolated import parse_untrusted
from moltbot.config.secrets import REDACTED, redact, redact_text, restore
from moltbot.config.store import (
    MAX_DEPTH,
    StaleWriteError,
    content_hash,
    depth,
    read_config,
    read_raw,
    replace_config_text,
    update_config,
)
from moltbot.errors import ConfigError, UsageError
from moltbot.gateway.methods.registry import MethodCall, NoParams, Params, method


@method("config.get", scope="admin")
async def config_get(call: MethodCall, params: NoParams) -> dict[str, Any]:
    path = call.runtime.instance.config_path
    try:
        snapshot = read_config(path, call.runtime.env)
    except ConfigError as exc:
        raw = path.read_bytes().decode("utf-8", errors="replace") if path.exists() else ""
        return {
            "path": str(path),
            "exists": path.exists(),
            "raw": redact_text(raw),
            "parsed": None,
            "valid": False,
            "config": None,
            "hash": content_hash(raw) if raw else None,
            "issues": [{"path": "", "message": exc.message}],
            "warnings": [],
            "legacyIssues": [],
        }
    return {
        "path": str(path),
        "exists": snapshot.exists,
        "raw": redact_text(snapshot.raw),
        "parsed": redact(snapshot.data),
        "valid": True,
        # as written, like ``parsed``: the Control UI's form edits this object and saves it
        # whole, so it must not carry the schema's defaults or resolved ``${VAR}`` values
        "config": redact(snapshot.data),
        "hash": snapshot.hash,
        "issues": [],
        "warnings": [{"path": "", "message": w} for w in snapshot.warnings],
        "legacyIssues": [],
    }


class SetParams(Params):
    raw: str
    baseHash: str | None = None


class PatchParams(Params):
    raw: Any
    baseHash: str | None = None
    sessionKey: str | None = None
    note: str | None = None
    restartDelayMs: int | None = None


def _base_hash(call: MethodCall, given: str | None) -> str:
    path = call.runtime.instance.config_path
    if not path.exists():
        return given or ""
    if not given:
        raise UsageError("config base hash required; re-run config.get and retry")
    return given


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


async def _write(
    call: MethodCall, base_hash: str, *, mutate: Any = None, text: str | None = None
) -> dict[str, Any]:
    """Write the config (apply ``mutate`` to its data, or replace it with ``text``) under
    the base-hash guard, in a worker thread (file lock, fsync and re-rendering stay off
    the event loop). A changed file raises ``StaleWriteError`` ("config changed since last
    load; ..."), a result that does not validate ``InvalidConfig`` ("invalid config")."""
    path = call.runtime.instance.config_path
    env = call.runtime.env
    check = _write_checks(call)
    author = call.writer
    if text is not None:
        data = await parse_untrusted(text, str(path))
        snapshot = await asyncio.to_thread(
            replace_config_text,
            path,
            text,
            env,
            base_hash=base_hash,
            data=data,
            check=check,
            author=author,
        )
    else:
        snapshot = await asyncio.to_thread(
            update_config, path, mutate, env, base_hash=base_hash, check=check, author=author
        )
    return {
        "ok": True,
        "path": str(path),
        "hash": snapshot.hash,
        "config": redact(snapshot.config.model_dump(by_alias=True, exclude_none=True)),
        "restart": {
            "mode": call.runtime.config.gateway.reload.mode,
            "note": "the gateway applies the file change itself",
        },
    }


def _write_checks(call: MethodCall) -> Any:
    """What `config set` checks, for protocol writers too: model references, and ports or
    paths that would clash with another instance on the host."""
    from moltbot.agents.models import config_write_check

    return config_write_check(call.runtime.instance.identity, call.runtime.env)


async def _parse_raw(raw: Any, label: str) -> dict[str, Any]:
    if isinstance(raw, dict):
        if depth(raw) > MAX_DEPTH:
            raise UsageError(f"invalid {label} params: raw is nested over {MAX_DEPTH} levels")
        return raw
    if not isinstance(raw, str):
        raise UsageError(f"invalid {label} params: raw must be a string or object")
    return await parse_untrusted(raw, label)


@method("config.set", params=SetParams, scope="admin")
async def config_set(call: MethodCall, params: SetParams) -> dict[str, Any]:
    """Write ``raw`` as the file, as sent (comments and layout included). Secrets the
    client saw redacted are put back into the text itself (:func:`_with_secrets`)."""
    base = _base_hash(call, params.baseHash)
    raw = params.raw
    if REDACTED in raw:
        raw = await _with_secrets(call, raw, base)
    return await _write(call, base, text=raw)


async def _with_secrets(call: MethodCall, raw: str, base: str) -> str:
    """``raw`` with each redacted value replaced by the file's current value at that key
    path (:func:`moltbot.config.secrets.restore`); only those values' spans change
    (:func:`moltbot.config.edit.render`). A marker with no value to match raises
    ``UsageError`` and nothing is written; a file that is not the one the client read
    (``base``) raises ``StaleWriteError``."""
    from moltbot.config.edit import render

    path = call.runtime.instance.config_path
    new = await parse_untrusted(raw, "config.set")
    current_raw, current = await asyncio.to_thread(read_raw, path)
    if base and content_hash(current_raw) != base:
        raise StaleWriteError(f"{path} changed since it was read; reload and retry")
    restored = restore(new, current)
    return await asyncio.to_thread(render, raw, new, restored)


def _replacing_with(new: dict[str, Any]) -> Any:
    """A mutation that replaces the whole file's data (secrets sent redacted are kept;
    a marker that matches none is refused)."""
    return lambda data: _replace(data, restore(new, dict(data)))


def _replace(data: dict[str, Any], new: dict[str, Any]) -> None:
    data.clear()
    data.update(new)


@method("config.patch", params=PatchParams, scope="admin")
async def config_patch(call: MethodCall, params: PatchParams) -> dict[str, Any]:
    base = _base_hash(call, params.baseHash)
    patch = await _parse_raw(params.raw, "config.patch")

    def mutate(data: dict[str, Any]) -> None:
        merged = merge_patch(data, restore(patch, data))
        _replace(data, merged)

    return await _write(call, base, mutate=mutate)


@method("config.apply", params=PatchParams, scope="admin")
async def config_apply(call: MethodCall, params: PatchParams) -> dict[str, Any]:
    """Replace the whole file, then restart in-process like upstream (after
    ``restartDelayMs``, default 2000, at most 60000): ``restart`` and ``sentinel`` say so."""
    import os
    import time

    base = _base_hash(call, params.baseHash)
    new = await _parse_raw(params.raw, "config.apply")
    result = await _write(call, base, mutate=_replacing_with(new))
    delay_ms = min(
        max(params.restartDelayMs if params.restartDelayMs is not None else 2000, 0), 60_000
    )
    call.runtime.restart_later(delay_ms / 1000, "config.apply")
    result["restart"] = {
        "ok": True,
        "pid": os.getpid(),
        "signal": "SIGUSR1",
        "delayMs": delay_ms,
        "reason": "config.apply",
        "mode": "signal",
    }
    result["sentinel"] = {
        "path": None,  # nothing to resume after the restart: runs in flight are drained first
        "payload": {
            "kind": "config-apply",
            "status": "ok",
            "ts": int(time.time() * 1000),
            "sessionKey": params.sessionKey,
            "message": params.note,
            "stats": {"mode": "config.apply", "root": str(call.runtime.instance.config_path)},
        },
    }
    return result


@method("config.schema", scope="admin")
async def config_schema(call: MethodCall, params: NoParams) -> dict[str, Any]:
    """The config's JSON Schema, references inlined, with a section per channel and
    ``uiHints`` (see :mod:`moltbot.gateway.config_schema`)."""
    from moltbot.gateway.config_schema import build_schema

    schema, hints = await asyncio.to_thread(build_schema)
    return {
        "schema": schema,
        "uiHints": hints,
        "version": call.runtime.version,
        "generatedAt": datetime.now(UTC).isoformat(timespec="seconds"),
    }


__all__ = ["merge_patch", "redact_text"]
