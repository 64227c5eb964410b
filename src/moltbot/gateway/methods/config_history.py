"""Config history over the protocol (``operator.admin``): ``config.history`` lists the
kept versions of this instance's config (newest first, number 1 = the one last
replaced), who wrote each, the last good one and who wrote the current file;
``config.history.get`` answers one version's text, secrets redacted. Restoring is an
ordinary ``config.set`` of that text with the current base hash (redacted secrets keep
their current values)."""

from __future__ import annotations

import asyncio
from typing import Any

from moltbot.errors import NotFoundError
from moltbot.gateway.methods.registry import MethodCall, NoParams, Params, method
from moltbot.validation import Field


def _listing(call: MethodCall) -> dict[str, Any]:
    from moltbot.config import history
    from moltbot.config.store import content_hash

    instance, env = call.runtime.instance, call.runtime.env
    path = instance.config_path
    current = content_hash(path.read_bytes().decode("utf-8", "replace")) if path.exists() else None
    good = history.last_good(instance.state_dir, path)
    return {
        "path": str(path),
        "current": {
            "hash": current,
            "writtenBy": history.author_of(path, current, env) if current else None,
        },
        "lastGood": {"hash": good.hash, "at": int(good.at * 1000)} if good else None,
        "versions": [
            {"number": number, **version.wire()}
            for number, version in enumerate(history.versions(path, env), start=1)
        ],
    }


@method("config.history", scope="admin")
async def config_history(call: MethodCall, params: NoParams) -> dict[str, Any]:
    return await asyncio.to_thread(_listing, call)


class VersionParams(Params):
    id: int = Field(ge=1)


def _version(call: MethodCall, version_id: int) -> dict[str, Any]:
    from moltbot.config import history
    from moltbot.config.secrets import redact_text

    path, env = call.runtime.instance.config_path, call.runtime.env
    for version in history.versions(path, env):
        if version.id == version_id:
            try:
                text = history.read_version(path, version, env)
            except OSError as exc:
                raise NotFoundError(f"config version {version_id} is gone ({exc})") from exc
            return {**version.wire(), "raw": redact_text(text)}
    raise NotFoundError(f"no config version {version_id}", hint="list them with config.history")


@method("config.history.get", params=VersionParams, scope="admin", bulky=True)
async def config_history_get(call: MethodCall, params: VersionParams) -> dict[str, Any]:
    return await asyncio.to_thread(_version, call, params.id)
