"""Channel DM pairing over the protocol (``operator.pairing``), as ``moltbot pairing``:
``channels.pairing.list``, ``channels.pairing.approve``, ``channels.pairing.reject``
and ``channels.pairing.revoke`` (take a sender off the approved list). The store's
file lock makes these safe beside the CLI and the running channels."""

from __future__ import annotations

import asyncio
from typing import Any

from moltbot.gateway.methods.registry import MethodCall, Params, method
from moltbot.validation import Field


class ListParams(Params):
    channel: str | None = Field(default=None, min_length=1, max_length=64)


class CodeParams(Params):
    channel: str = Field(min_length=1, max_length=64)
    code: str = Field(min_length=1, max_length=32)


class SenderParams(Params):
    channel: str = Field(min_length=1, max_length=64)
    id: str = Field(min_length=1, max_length=200)


def _store(call: MethodCall, channel: str) -> Any:
    from moltbot.channels.pairing import PairingStore

    return PairingStore(call.runtime.instance.credentials_dir, channel.lower())


def _listing(call: MethodCall, channel: str | None) -> dict[str, Any]:
    from moltbot.channels.pairing import list_channels_with_pairing

    credentials = call.runtime.instance.credentials_dir
    names = [channel.lower()] if channel else list_channels_with_pairing(credentials)
    requests, allowed = [], {}
    for name in names:
        store = _store(call, name)
        requests += [{"channel": name, **r.as_json()} for r in store.pending()]
        allowed[name] = list(store.allowed())
    return {"requests": requests, "allowed": allowed}


@method("channels.pairing.list", params=ListParams, scope="pairing")
async def pairing_list(call: MethodCall, params: ListParams) -> dict[str, Any]:
    """``{requests: [{channel, id, code, createdAt, lastSeenAt, meta}], allowed: {channel:
    [sender ids]}}`` for ``channel`` or every channel that has pairing files."""
    return await asyncio.to_thread(_listing, call, params.channel)


@method("channels.pairing.approve", params=CodeParams, scope="pairing")
async def pairing_approve(call: MethodCall, params: CodeParams) -> dict[str, Any]:
    request = await asyncio.to_thread(_store(call, params.channel).approve, params.code)
    return {"approved": True, "channel": params.channel.lower(), **request.as_json()}


@method("channels.pairing.reject", params=CodeParams, scope="pairing")
async def pairing_reject(call: MethodCall, params: CodeParams) -> dict[str, Any]:
    request = await asyncio.to_thread(_store(call, params.channel).reject, params.code)
    return {"rejected": True, "channel": params.channel.lower(), **request.as_json()}


@method("channels.pairing.revoke", params=SenderParams, scope="pairing")
async def pairing_revoke(call: MethodCall, params: SenderParams) -> dict[str, Any]:
    removed = await asyncio.to_thread(_store(call, params.channel).disallow, params.id)
    return {"revoked": removed, "channel": params.channel.lower(), "id": params.id}
