"""A target's config: validate, get (redacted), diff, history, restore, set.

Reads use the target's file as written. ``restore`` writes a kept version (the last
good config by default, or history version N) byte for byte; ``set`` changes one key
exactly as ``moltbot config set`` does (unknown keys refused with a "did you mean",
the value a JSON5 literal, the result validated, model references checked, ports and
paths checked against the other instances on the host). Both write through the
config store: locked, atomic, compare-and-swap against the hash the change was
confirmed for, and kept in the target's own config history as written by the rescue.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from moltbot.config import history, keypath
from moltbot.config.secrets import REDACTED, is_secret_key, redact, redact_text
from moltbot.config.store import content_hash, parse_text, read_raw, validate
from moltbot.errors import ConfigError, NotFoundError, UsageError
from moltbot.instance.resolve import Instance
from moltbot.rescue.inspect import check_config

MAX_DIFF_LINES = 400


@dataclass(frozen=True)
class Source:
    """A kept config text: the last good one, or history version ``number`` (1 = the
    version most recently replaced)."""

    label: str
    text: str
    hash: str
    number: int | None = None


def source(instance: Instance, number: int | None) -> Source:
    """The last good config (``number`` None) or history version ``number``;
    :class:`NotFoundError` when there is none."""
    path = instance.config_path
    if number is None:
        good = history.last_good(instance.state_dir, path)
        if good is None:
            raise NotFoundError(
                f"no last good config is recorded for {_who(instance)} (its gateway never ran "
                "with this version of moltbot)",
                hint="use a version from the config history instead (`config history`)",
            )
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(good.at))
        return Source(f"last good ({good.hash[:8]}, ran {when})", good.text, good.hash)
    kept = history.versions(path)
    if not 1 <= number <= len(kept):
        raise NotFoundError(
            f"{_who(instance)} has {len(kept)} kept config version(s); there is no {number}"
        )
    version = kept[number - 1]
    try:
        text = history.read_version(path, version)
    except OSError as exc:
        raise NotFoundError(f"version {number} cannot be read: {exc}") from None
    return Source(f"version {number} ({version.hash[:8]})", text, version.hash, number)


def current_text(instance: Instance) -> tuple[str, str]:
    """The file's text (``''`` when missing; bytes that are not UTF-8 replaced) and the
    hash of its bytes (``''`` when missing): what a change is confirmed against."""
    import hashlib
    import os

    from moltbot.fsutil import open_regular

    try:
        with os.fdopen(open_regular(instance.config_path), "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return "", ""
    except OSError as exc:
        raise ConfigError(f"cannot read config {instance.config_path}: {exc}") from None
    digest = hashlib.sha256(data).hexdigest() if data else ""
    return data.decode("utf-8", errors="replace"), digest


def diff(instance: Instance, number: int | None) -> dict[str, Any]:
    """The unified diff (secrets redacted) from the last good config (or version
    ``number``) to the current file."""
    import difflib  # a rescue command's need: not loaded by an idle gateway

    kept = source(instance, number)
    text, digest = current_text(instance)
    lines = list(
        difflib.unified_diff(
            redact_text(kept.text).splitlines(),
            redact_text(text).splitlines(),
            fromfile=kept.label,
            tofile=f"current ({digest[:8] or 'missing'})",
            n=1,
            lineterm="",
        )
    )
    truncated = len(lines) > MAX_DIFF_LINES
    return {
        "from": kept.label,
        "fromHash": kept.hash,
        "toHash": digest or None,
        "same": not lines,
        "diff": lines[:MAX_DIFF_LINES],
        "truncated": truncated,
    }


def listing(instance: Instance, limit: int = 10) -> dict[str, Any]:
    """The kept versions (newest first, numbered from 1), who wrote each, and which one
    is the current file and the last good config."""
    path = instance.config_path
    _, digest = current_text(instance)
    good = history.last_good(instance.state_dir, path)
    versions = history.versions(path)
    return {
        "current": {
            "hash": digest or None,
            "writtenBy": history.author_of(path, digest) if digest else None,
        },
        "lastGood": {"hash": good.hash, "at": int(good.at * 1000)} if good else None,
        "versions": [
            {"number": n, **v.wire(), "lastGood": bool(good and good.hash == v.hash)}
            for n, v in enumerate(versions[: max(1, min(limit, history.MAX_VERSIONS))], 1)
        ],
        "total": len(versions),
    }


def diff_text(who: str, result: dict[str, Any]) -> str:
    """:func:`diff`'s result as lines for a person (``who``: the instance's name)."""
    if result["same"]:
        return f"{who}: the config is the same as {result['from']}"
    return "\n".join([f"{who}: changes since {result['from']}:", *result["diff"][2:]])


def listing_text(who: str, result: dict[str, Any], restore_hint: str) -> str:
    """:func:`listing`'s result as lines for a person; ``restore_hint`` ends it when
    there is something to restore (``/rescue config restore main N``)."""
    current = result["current"]
    lines = [
        f"{who}: {result['total']} kept version(s); current "
        f"{(current['hash'] or 'none')[:8]} by {current['writtenBy'] or '-'}"
    ]
    for row in result["versions"]:
        when = time.strftime("%m-%d %H:%M", time.localtime(row["savedAt"] / 1000))
        mark = " (last good)" if row["lastGood"] else ""
        lines.append(
            f"{row['number']}. {row['hash'][:8]}{mark} by {row['writtenBy']}, replaced {when}"
        )
    if result["total"]:
        lines.append(f"restore one: {restore_hint}")
    return "\n".join(lines)


def get(instance: Instance, key: str | None) -> Any:
    """The value of ``key`` (or the whole file) as written, secrets redacted."""
    _, data = read_raw(instance.config_path)
    keys = keypath.parse(key) if key else []
    value = keypath.get(data, keys) if keys else data
    last = keys[-1] if keys else ""
    if isinstance(last, str) and is_secret_key(last) and isinstance(value, str) and value:
        return redact({last: value})[last]
    return redact(value)


# -- changes ------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """A config change, checked and ready to confirm: the text or mutation to write,
    the hash the file must still have, and a line saying what it does."""

    summary: str
    before: str
    text: str | None = None
    key: str | None = None
    value: Any = None
    shown: Any = None
    """``value`` as it may be shown (a secret redacted)."""


def plan_restore(instance: Instance, number: int | None, env: Mapping[str, str]) -> Planned:
    """Restoring the last good config (or version ``number``): it must still be valid
    and differ from the file."""
    kept = source(instance, number)
    try:
        validate(parse_text(kept.text, kept.label), env, kept.label, missing_env="keep")
    except ConfigError as exc:
        raise ConfigError(
            f"{kept.label} is not valid any more: {exc.message}",
            hint="pick another version (`config history`)",
        ) from None
    _, digest = current_text(instance)
    if digest == kept.hash:
        raise UsageError(f"the config of {_who(instance)} already is {kept.label}")
    state = check_config(instance.config_path, env)
    now = "missing" if not state.exists else ("valid" if state.valid else "invalid")
    return Planned(
        f"restore the config of {_who(instance)} to {kept.label}, replacing the current "
        f"{now} file ({digest[:8] or 'none'})",
        digest,
        text=kept.text,
    )


def plan_set(instance: Instance, key: str, value: str, env: Mapping[str, str]) -> Planned:
    """Setting ``key`` to ``value`` (JSON5; a bare word is a string), refused early as
    ``config set`` refuses it."""
    from moltbot.config.schema import unknown_key
    from moltbot.config.store import MAX_DEPTH, json5_depth, parse_value

    keys = keypath.parse(key)
    problem = unknown_key(keys)
    if problem:
        raise UsageError(f"{problem}; nothing changed")
    if json5_depth(value) > MAX_DEPTH:
        raise UsageError(f"the value is nested more than {MAX_DEPTH} levels deep")
    parsed = parse_value(value)
    raw, data = read_raw(instance.config_path)
    planned = copy.deepcopy(data)
    keypath.set_(planned, keys, parsed)
    validate(planned, env, str(instance.config_path), missing_env="keep")
    secret = isinstance(keys[-1], str) and is_secret_key(keys[-1]) and not _reference(parsed)
    shown = REDACTED if secret else parsed
    return Planned(
        f"set {key} = {_short(shown)} in the config of {_who(instance)}",
        content_hash(raw) if raw else "",
        key=key,
        value=parsed,
        shown=shown,
    )


def apply(instance: Instance, planned: Planned, env: Mapping[str, str], author: str) -> str:
    """Write ``planned`` (see the module doc); the new file's hash. A file that changed
    since the change was confirmed is refused (``StaleWriteError``), nothing written."""
    from moltbot.agents.models import config_write_check
    from moltbot.config.store import replace_config_text, update_config

    path = instance.config_path
    check = config_write_check(instance.identity, env)
    if planned.text is not None:
        snapshot = replace_config_text(
            path,
            planned.text,
            env,
            base_hash=planned.before,
            check=check,
            author=author,
            missing_env="keep",
        )
    else:
        keys = keypath.parse(planned.key or "")
        snapshot = update_config(
            path,
            lambda data: keypath.set_(data, keys, planned.value),
            env,
            base_hash=planned.before,
            check=check,
            author=author,
        )
    return snapshot.hash or ""


def _reference(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("${") and value.endswith("}")


def _short(value: Any) -> str:
    import json

    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:79] + "…"


def _who(instance: Instance) -> str:
    return "the default instance" if instance.profile == "default" else instance.profile


__all__ = [
    "Planned",
    "Source",
    "apply",
    "current_text",
    "diff",
    "diff_text",
    "get",
    "listing",
    "listing_text",
    "plan_restore",
    "plan_set",
    "source",
]
