"""WebChat methods: ``chat.send``, ``chat.history``, ``chat.abort``, ``chat.inject``."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from typing import TYPE_CHECKING, Any

from moltbot.errors import MethodError, MoltbotError, RetryLaterError, UsageError
from moltbot.gateway.methods.agents import agents_of
from moltbot.gateway.methods.registry import MethodCall, Params, method
from moltbot.instance.resolve import DEFAULT_AGENT_ID
from moltbot.validation import Field

if TYPE_CHECKING:
    from moltbot.agents.runtime import AgentRuntime
    from moltbot.commands import Invocation

STOP_WORDS = frozenset({"stop!"})
"""Said instead of ``/stop`` (upstream's shortcut)."""


class ChatSendParams(Params):
    sessionKey: str = Field(min_length=1)
    message: str
    idempotencyKey: str = Field(min_length=1)
    thinking: str | None = None
    deliver: bool | None = None
    attachments: list[Any] | None = None
    timeoutMs: int | None = Field(default=None, ge=1)


@method("chat.send", params=ChatSendParams, scope="write")
async def chat_send(call: MethodCall, params: ChatSendParams) -> dict[str, Any]:
    """Ack ``{runId, status: "started"}`` once the message is on disk; the reply
    streams as ``chat``/``agent`` events. Same idempotencyKey → the same run."""
    dedupe = call.runtime.dedupe
    key = params.idempotencyKey
    cached = dedupe.get("chat", key)
    if cached is not None:
        if not cached.ok:
            raise MethodError.from_shape(cached.error)
        return cached.payload  # type: ignore[no-any-return]
    from moltbot.commands import REGISTRY  # loaded with the first message, not at start

    text = params.message.strip()
    invocation = REGISTRY.parse("/stop" if text.lower() in STOP_WORDS else text)
    if invocation is None:
        runtime = await agents_of(call)
        agent_id, session_key = runtime.session_key(params.sessionKey)
        invocation = REGISTRY.answer(f"webchat:{session_key}", text)
    else:  # a command needs no agents (/rescue works while they are down)
        runtime = await _agents_if_running(call)
        agent_id, session_key = (
            runtime.session_key(params.sessionKey)
            if runtime
            else (DEFAULT_AGENT_ID, params.sessionKey)
        )
    if invocation is not None:
        payload = await _command(call, runtime, invocation, agent_id, session_key, params)
        dedupe.put("chat", key, True, payload)
        return payload
    assert runtime is not None
    existing = runtime.get_run(key)
    if existing is not None and not existing.state.finished:
        return {"runId": key, "status": "in_flight"}
    if not text and not params.attachments:
        raise UsageError("message or attachment required")
    media = await store_attachments(runtime, agent_id, session_key, params.attachments or [])
    timeout = params.timeoutMs / 1000 if params.timeoutMs else None
    message = runtime.skill_request(agent_id, text) or params.message  # /<skill> [input]
    run = await runtime.submit(
        agent_id,
        session_key,
        message,
        run_id=key,
        timeout=timeout,
        channel="webchat",
        media=media,
    )
    started = {"runId": key, "status": "started"}
    dedupe.put("chat", key, True, started)

    def remember(_future: Any) -> None:
        if run.state == "ok":
            dedupe.put("chat", key, True, {"runId": key, "status": "ok"})
        else:
            summary = run.error or str(run.state)
            details = {"runId": key, "status": "error", "summary": summary}
            failed = MoltbotError(summary, details=details)
            dedupe.put("chat", key, False, None, failed.error_shape())

    assert run.done is not None
    run.done.add_done_callback(remember)
    return started


async def _agents_if_running(call: MethodCall) -> AgentRuntime | None:
    """The agent runtime, or None when it failed (not while the gateway restarts)."""
    try:
        return await agents_of(call)
    except RetryLaterError:
        raise
    except MoltbotError:
        return None


ATTACHMENT_MAX_BYTES = 5_000_000
"""Upstream's limit for one ``chat.send`` attachment (decoded)."""
_DATA_URL = re.compile(r"^data:[^;,]+;base64,(.*)$", re.S)


async def store_attachments(
    runtime: Any, agent_id: str, session_key: str, attachments: list[Any]
) -> tuple[Any, ...]:
    """Upstream's ``attachments`` (``[{type?, mimeType?, fileName?, content}]``,
    ``content`` base64 or a ``data:`` URL), stored in the session's media dir.

    Raises UsageError naming the attachment: content not a base64 string, empty,
    or over 5 MB. The type is sniffed from the bytes (a claimed image that is
    none is kept as a file and never shown to a model as an image)."""
    if not attachments:
        return ()
    store = runtime.media_store(agent_id)
    stored = []
    for index, item in enumerate(attachments):
        if not isinstance(item, dict):
            raise UsageError(f"attachment {index + 1}: must be an object")
        label = item.get("fileName") or item.get("type") or f"attachment-{index + 1}"
        content = item.get("content")
        if not isinstance(content, str):
            raise UsageError(f"attachment {label}: content must be a base64 string")
        raw = content.strip()
        if match := _DATA_URL.match(raw):
            raw = match.group(1)
        if len(raw) > ATTACHMENT_MAX_BYTES * 4 // 3 + 8:
            raise UsageError(f"attachment {label}: exceeds the size limit of 5 MB")
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise UsageError(f"attachment {label}: invalid base64 content") from None
        kind = item.get("type") if item.get("type") in ("image", "audio", "video") else None
        stored.append(
            await asyncio.to_thread(
                store.save,
                session_key,
                data,
                kind=kind,
                mime_type=item.get("mimeType") if isinstance(item.get("mimeType"), str) else None,
                file_name=item.get("fileName") if isinstance(item.get("fileName"), str) else None,
                max_bytes=ATTACHMENT_MAX_BYTES,
            )
        )
    return tuple(stored)


async def _command(
    call: MethodCall,
    runtime: AgentRuntime | None,
    invocation: Invocation,
    agent_id: str,
    session_key: str,
    params: ChatSendParams,
) -> dict[str, Any]:
    """A chat command typed in WebChat: run before any model; the reply is a ``chat``
    ``final`` event of run ``idempotencyKey`` and is also in the answer. The operator
    (a client with ``operator.write``) is an owner; its scopes go to the command
    (``/rescue`` wants ``operator.admin``)."""
    from moltbot.commands import REGISTRY, CommandContext, handle

    client = call.connection.client
    sender = f"webchat:{client.id if client else call.connection.conn_id[:8]}"

    async def reply(text: str) -> None:
        if runtime is not None:
            await runtime.record_command(session_key, "", text, transcript=False)

    ctx = CommandContext(
        name=invocation.command.name,
        args=invocation.args,
        text=params.message.strip(),
        surface="webchat",
        sender=sender,
        sender_name=client.display_name if client else None,
        agent_id=agent_id,
        session_key=session_key,
        is_owner=True,
        reply=reply,
        registry=REGISTRY,
        agents=runtime,
        config=call.runtime.config,
        instance=call.runtime.instance,
        conversation=f"webchat:{session_key}",
        scopes=frozenset(call.connection.scopes),
        lookup=call.runtime.subsystem,
        answer=invocation.answer,
    )
    result = await handle(invocation, ctx, run_id=params.idempotencyKey)
    payload: dict[str, Any] = {
        "ok": True,
        "runId": params.idempotencyKey,
        "status": "ok",
        "command": invocation.command.name,
        **result.data,
    }
    if result.text:
        payload["reply"] = result.text
    return payload


class ChatHistoryParams(Params):
    sessionKey: str = Field(min_length=1)
    limit: int = Field(default=200, ge=1, le=1000)
    before: str | None = Field(default=None, min_length=1)


@method("chat.history", params=ChatHistoryParams, scope="read", bulky=True)
async def chat_history(call: MethodCall, params: ChatHistoryParams) -> dict[str, Any]:
    from moltbot.gateway.http.media import with_urls

    runtime = await agents_of(call)
    agent_id, _ = runtime.session_key(params.sessionKey)
    return with_urls(
        call.runtime,
        agent_id,
        await runtime.history(params.sessionKey, params.limit, params.before),
    )


class ChatAbortParams(Params):
    sessionKey: str = Field(min_length=1)
    runId: str | None = None


@method("chat.abort", params=ChatAbortParams, scope="write")
async def chat_abort(call: MethodCall, params: ChatAbortParams) -> dict[str, Any]:
    runtime = await agents_of(call)
    _, key = runtime.session_key(params.sessionKey)
    run_ids = await runtime.abort(key, params.runId, reason="chat.abort")
    return {"ok": True, "aborted": bool(run_ids), "runIds": run_ids}


class ChatInjectParams(Params):
    sessionKey: str = Field(min_length=1)
    message: str = Field(min_length=1)
    label: str | None = Field(default=None, max_length=100)


@method("chat.inject", params=ChatInjectParams, scope="admin", advertise=False)
async def chat_inject(call: MethodCall, params: ChatInjectParams) -> dict[str, Any]:
    runtime = await agents_of(call)
    return await runtime.inject(params.sessionKey, params.message, params.label)
