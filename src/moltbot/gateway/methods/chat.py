"""WebChat methods: ``chat.send``, ``chat.history``, ``chat.abort``, ``chat.inject``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from moltbot.errors import MethodError, MoltbotError, UsageError
from moltbot.gateway.methods.agents import agents_of
from moltbot.gateway.methods.registry import MethodCall, Params, method

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
    runtime = await agents_of(call)
    dedupe = call.runtime.dedupe
    key = params.idempotencyKey
    cached = dedupe.get("chat", key)
    if cached is not None:
        if not cached.ok:
            raise MethodError.from_shape(cached.error)
        return cached.payload  # type: ignore[no-any-return]
    existing = runtime.get_run(key)
    if existing is not None and not existing.state.finished:
        return {"runId": key, "status": "in_flight"}
    from moltbot.commands import REGISTRY  # loaded with the first message, not at start

    text = params.message.strip()
    agent_id, session_key = runtime.session_key(params.sessionKey)
    invocation = REGISTRY.parse("/stop" if text.lower() in STOP_WORDS else text)
    if invocation is not None:
        payload = await _command(call, runtime, invocation, agent_id, session_key, params)
        dedupe.put("chat", key, True, payload)
        return payload
    if params.attachments:
        raise UsageError("attachments are not supported yet")
    if not text:
        raise UsageError("message or attachment required")
    timeout = params.timeoutMs / 1000 if params.timeoutMs else None
    run = await runtime.submit(
        agent_id, session_key, params.message, run_id=key, timeout=timeout, channel="webchat"
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


async def _command(
    call: MethodCall,
    runtime: AgentRuntime,
    invocation: Invocation,
    agent_id: str,
    session_key: str,
    params: ChatSendParams,
) -> dict[str, Any]:
    """A chat command typed in WebChat: run before any model; the reply is a ``chat``
    ``final`` event of run ``idempotencyKey`` and is also in the answer. The operator
    (a client with ``operator.write``) is an owner."""
    from moltbot.commands import REGISTRY, CommandContext, handle

    client = call.connection.client
    sender = f"webchat:{client.id if client else call.connection.conn_id[:8]}"

    async def reply(text: str) -> None:
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
        config=runtime.config,
        instance=runtime.instance,
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


@method("chat.history", params=ChatHistoryParams, scope="read")
async def chat_history(call: MethodCall, params: ChatHistoryParams) -> dict[str, Any]:
    runtime = await agents_of(call)
    return await runtime.history(params.sessionKey, params.limit)


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
