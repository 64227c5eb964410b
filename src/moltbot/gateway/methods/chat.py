"""WebChat methods: ``chat.send``, ``chat.history``, ``chat.abort``, ``chat.inject``."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from moltbot.errors import MethodError, MoltbotError, UsageError
from moltbot.gateway.methods.agents import agents_of
from moltbot.gateway.methods.registry import MethodCall, Params, method
from moltbot.subsystems import AGENTS, RESCUE

ABORT_TRIGGERS = frozenset({"/stop", "/abort", "stop!"})
RESET_TRIGGERS = frozenset({"/new", "/reset"})


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
    # --- commands answered before the model (issue 15, /rescue): the one interception
    # point, to move onto the shared chat-command layer -------------------------------------
    answered = await _pre_agent_command(call, params)
    if answered is not None:
        return answered
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
    text = params.message.strip()
    agent_id, session_key = runtime.session_key(params.sessionKey)
    if text.lower() in ABORT_TRIGGERS:
        run_ids = await runtime.abort(session_key, reason="stop command")
        return {"ok": True, "aborted": bool(run_ids), "runIds": run_ids}
    if text.lower() in RESET_TRIGGERS:
        await runtime.abort(session_key, reason="reset")
        entry = await runtime.store(agent_id).reset(session_key)
        await runtime.inject(session_key, "Started a new session.", label="reset")
        return {
            "ok": True,
            "reset": True,
            "sessionKey": session_key,
            "sessionId": entry.session_id,
        }
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


async def _pre_agent_command(call: MethodCall, params: ChatSendParams) -> dict[str, Any] | None:
    """A ``/rescue`` command (or an operator's confirmation) answered without the model:
    the reply goes into the session as a note and into the answer (``reply``)."""
    rescue = call.runtime.subsystem(RESCUE)
    if rescue is None or call.runtime.dedupe.get("chat", params.idempotencyKey) is not None:
        return None
    agents = call.runtime.subsystem(AGENTS)
    session_key = agents.session_key(params.sessionKey)[1] if agents else params.sessionKey
    admin = "operator.admin" in call.connection.scopes
    reply = await rescue.webchat_command(params.message, session_key=session_key, admin=admin)
    if reply is None:
        return None
    if agents is not None:
        await agents.inject(session_key, reply, label="rescue")
    payload = {"runId": params.idempotencyKey, "status": "ok", "command": "rescue", "reply": reply}
    call.runtime.dedupe.put("chat", params.idempotencyKey, True, payload)
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
