"""Messaging methods: ``send`` and ``channels.status`` (protocol §4 Messaging).

``send`` is idempotent per ``idempotencyKey``: a repeated key within five
minutes replays the first result (or error), and concurrent duplicates share
the one delivery in flight.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from moltbot.errors import MethodError, MoltbotError, UsageError
from moltbot.gateway.methods.registry import MethodCall, Params, error_for, method
from moltbot.subsystems import CHANNELS
from moltbot.validation import Field

if TYPE_CHECKING:
    from moltbot.channels.manager import ChannelManager


class SendParams(Params):
    to: str = Field(min_length=1)
    message: str = ""
    idempotencyKey: str = Field(min_length=1)
    mediaUrl: str | None = None
    mediaUrls: list[str] | None = None
    gifPlayback: bool | None = None
    channel: str | None = None
    accountId: str | None = None
    sessionKey: str | None = None
    threadId: str | None = None
    replyTo: str | None = None


class ChannelsStatusParams(Params):
    probe: bool | None = None
    timeoutMs: int | None = Field(default=None, ge=100, le=120_000)


def _manager(call: MethodCall) -> ChannelManager:
    manager = call.runtime.subsystem(CHANNELS)
    if manager is None:
        raise MoltbotError("channels are not running", retryable=True)
    return manager


@method("send", params=SendParams, scope="write")
async def send(call: MethodCall, params: SendParams) -> dict[str, Any]:
    runtime = call.runtime
    key = params.idempotencyKey
    cached = runtime.dedupe.get("send", key)
    if cached is not None:
        if cached.ok:
            return cached.payload  # type: ignore[no-any-return]
        raise MethodError.from_shape(cached.error)
    manager = _manager(call)
    inflight = manager.inflight
    shared = inflight.get(key)
    if shared is not None:
        return await asyncio.shield(shared)  # type: ignore[no-any-return]
    future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    inflight[key] = future
    try:
        payload = await _deliver(manager, params)
    except Exception as exc:  # recorded for replays, then answered like any failure
        runtime.dedupe.put("send", key, False, None, error_for("send", exc))
        future.set_exception(exc)
        future.exception()  # retrieved: nobody else may be waiting
        raise
    finally:
        inflight.pop(key, None)
    runtime.dedupe.put("send", key, True, payload)
    future.set_result(payload)
    return payload


async def _deliver(manager: Any, params: SendParams) -> dict[str, Any]:
    from moltbot.channels import registry
    from moltbot.channels.types import OutboundMessage

    media = [*([params.mediaUrl] if params.mediaUrl else []), *(params.mediaUrls or [])]
    if not params.message.strip() and not media:
        raise UsageError("message or media required")
    channel = (params.channel or manager.default_channel()).lower()
    result = await manager.send(
        channel,
        params.to,
        OutboundMessage(
            text=params.message,
            media=tuple(media),
            reply_to_id=params.replyTo,
            thread_id=params.threadId,
        ),
        account_id=params.accountId,
    )
    payload: dict[str, Any] = {
        "runId": params.idempotencyKey,
        "messageId": result.message_id,
        "messageIds": list(result.message_ids),
        "channel": result.channel,
        "accountId": result.account_id,
    }
    payload[registry.manifest(result.channel).chat_key] = result.chat_id
    return payload


class ChannelsLogoutParams(Params):
    channel: str = Field(min_length=1)
    accountId: str | None = None


@method("channels.logout", params=ChannelsLogoutParams, scope="admin")
async def channels_logout(call: MethodCall, params: ChannelsLogoutParams) -> dict[str, Any]:
    """Stop the account, log it out on the platform (Matrix: its access token) and
    remove its credentials from the config: ``{channel, accountId, cleared,
    loggedOut, envToken}``."""
    manager = _manager(call)
    return await manager.logout(params.channel, params.accountId)


@method("channels.status", params=ChannelsStatusParams, scope="read")
async def channels_status(call: MethodCall, params: ChannelsStatusParams) -> dict[str, Any]:
    from moltbot.gateway.channel_status import status_payload

    manager = call.runtime.subsystem(CHANNELS)
    if manager is None:
        payload = status_payload([])
        payload["error"] = call.runtime.subsystem_errors.get("channels", "channels are not running")
        return payload
    if params.probe:
        await manager.probe_all((params.timeoutMs or 10_000) / 1000)
    return status_payload(manager.report())
