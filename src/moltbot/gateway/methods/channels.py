"""Messaging methods: ``send`` and ``channels.status`` (protocol §4 Messaging).

``send`` is idempotent per ``idempotencyKey``: a repeated key within five
minutes replays the first result (or error), and concurrent duplicates share
the one delivery in flight.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from moltbot.gateway import protocol
from moltbot.gateway.methods.registry import MethodCall, MethodError, Params, method


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


def _manager(call: MethodCall) -> Any:
    manager = call.runtime.subsystem("channels")
    if manager is None:
        raise MethodError(protocol.UNAVAILABLE, "channels are not running", retryable=True)
    return manager


def _method_error(exc: Exception) -> MethodError:
    from moltbot.channels.errors import ChannelError, ChannelNotReady

    if isinstance(exc, MethodError):
        return exc
    if isinstance(exc, ChannelNotReady):
        retry_ms = int(exc.retry_after * 1000) if exc.retry_after else None
        return MethodError(
            protocol.UNAVAILABLE, exc.message, retryable=True, retry_after_ms=retry_ms
        )
    if isinstance(exc, ChannelError):
        return MethodError(protocol.INVALID_REQUEST, exc.message)
    return MethodError(protocol.UNAVAILABLE, f"send failed: {exc}")


@method("send", params=SendParams, scope="write")
async def send(call: MethodCall, params: SendParams) -> dict[str, Any]:
    runtime = call.runtime
    key = params.idempotencyKey
    cached = runtime.dedupe.get("send", key)
    if cached is not None:
        if cached.ok:
            return cached.payload  # type: ignore[no-any-return]
        error = cached.error or {}
        raise MethodError(
            error.get("code", protocol.UNAVAILABLE),
            error.get("message", "failed"),
            retryable=error.get("retryable"),
        )
    manager = _manager(call)
    inflight = manager.inflight
    shared = inflight.get(key)
    if shared is not None:
        try:
            return await asyncio.shield(shared)  # type: ignore[no-any-return]
        except Exception as exc:
            raise _method_error(exc) from None
    future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    inflight[key] = future
    try:
        payload = await _deliver(manager, params)
    except Exception as exc:
        error = _method_error(exc)
        runtime.dedupe.put("send", key, False, None, error.shape())
        future.set_exception(error)
        future.exception()  # retrieved: nobody else may be waiting
        raise error from None
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
        raise MethodError(protocol.INVALID_REQUEST, "message or media required")
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


@method("channels.status", params=ChannelsStatusParams, scope="read")
async def channels_status(call: MethodCall, params: ChannelsStatusParams) -> dict[str, Any]:
    from moltbot.gateway.channel_status import status_payload

    manager = call.runtime.subsystem("channels")
    if manager is None:
        payload = status_payload([])
        payload["error"] = call.runtime.subsystem_errors.get("channels", "channels are not running")
        return payload
    if params.probe:
        await manager.probe_all((params.timeoutMs or 10_000) / 1000)
    return status_payload(manager.report())
