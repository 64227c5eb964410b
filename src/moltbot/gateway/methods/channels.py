"""Messaging methods: ``send`` and ``channels.status`` (protocol §4 Messaging).

``send`` is idempotent per ``idempotencyKey``: a repeated key within five
minutes replays the first result (or error), and concurrent duplicates share
the one delivery in flight.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from pydantic import Field

from moltbot.errors import MethodError, MoltbotError, UsageError
from moltbot.gateway.methods.registry import MethodCall, Params, error_for, method
from moltbot.subsystems import CHANNELS

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


class ChannelsLogoutParams(Params):
    channel: str = Field(min_length=1)
    accountId: str | None = None


@method("channels.logout", params=ChannelsLogoutParams, scope="admin")
async def channels_logout(call: MethodCall, params: ChannelsLogoutParams) -> dict[str, Any]:
    """Sign an account out: its credentials (the manifest's secret keys and token
    sources) leave the config, so the reload stops it; the rest of its section stays.
    A credential that comes from the environment stays (``envToken`` names it)."""
    from moltbot.channels import registry
    from moltbot.config.store import update_config

    name = params.channel.strip().lower()
    try:
        manifest = registry.manifest(name)
    except MoltbotError:
        raise UsageError("invalid channels.logout channel") from None
    account = (params.accountId or "").strip() or "default"
    path = ["channels", name] if account == "default" else ["channels", name, "accounts", account]
    cleared: list[str] = []

    def mutate(data: dict[str, Any]) -> None:
        section: Any = data
        for part in path:
            section = section.get(part) if isinstance(section, dict) else None
        if not isinstance(section, dict):
            return
        for key in manifest.credential_keys:
            if key in section:
                del section[key]
                cleared.append(key)

    await asyncio.to_thread(
        update_config, call.runtime.instance.config_path, mutate, call.runtime.env
    )
    env_token = manifest.main_env if account == "default" else None
    from_env = bool(env_token and call.runtime.env.get(env_token))
    return {
        "channel": name,
        "accountId": account,
        "cleared": bool(cleared),
        "clearedKeys": cleared,
        "envToken": env_token if from_env else None,
        "loggedOut": bool(cleared) and not from_env,
    }
