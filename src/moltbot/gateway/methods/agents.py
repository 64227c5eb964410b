"""``agent`` (two-stage), ``agent.wait``, ``agents.list``, ``models.list``."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from pydantic import Field

from moltbot.errors import MethodError, MoltbotError, RetryLaterError, UsageError
from moltbot.gateway import protocol
from moltbot.gateway.methods.registry import MethodCall, NoParams, Params, method
from moltbot.lifecycle import State
from moltbot.subsystems import AGENTS

if TYPE_CHECKING:
    from moltbot.agents.run import Run
    from moltbot.agents.runtime import AgentRuntime


STARTUP_WAIT_S = 15.0


async def agents_of(call: MethodCall) -> AgentRuntime:
    """The running agent runtime (waiting briefly while it starts), or UNAVAILABLE
    (retryable while the gateway restarts)."""
    runtime = call.runtime.subsystem(AGENTS)
    if runtime is None and call.runtime.state in (State.STOPPING, State.STOPPED):
        raise RetryLaterError("the gateway is restarting; send it again in a moment")
    starting = call.runtime.registered(AGENTS)
    if runtime is None and starting is not None and "agents" not in call.runtime.subsystem_errors:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(starting.ready.wait(), STARTUP_WAIT_S)
        runtime = call.runtime.subsystem(AGENTS)
    if runtime is None:
        reason = call.runtime.subsystem_errors.get("agents", "not running")
        raise MoltbotError(f"the agent runtime is unavailable ({reason})")
    return runtime


def final_payload(run: Run) -> dict[str, Any]:
    return {
        "runId": run.id,
        "status": "ok",
        "summary": "completed",
        "result": {
            "text": run.text,
            "sessionKey": run.session_key,
            "model": run.model,
            "usage": run.usage(),
            "stopReason": run.stop_reason,
        },
    }


def final_error(run: Run) -> MethodError:
    """The error answer of a run that did not end ``ok`` (its code is the run's)."""
    code = protocol.AGENT_TIMEOUT if run.error_code == "AGENT_TIMEOUT" else protocol.UNAVAILABLE
    summary = run.error or str(run.state)
    return MethodError(
        code, summary, details={"runId": run.id, "status": str(run.state), "summary": summary}
    )


class AgentParams(Params):
    message: str
    idempotencyKey: str = Field(min_length=1)
    agentId: str | None = None
    to: str | None = None
    replyTo: str | None = None
    sessionId: str | None = None
    sessionKey: str | None = None
    thinking: str | None = None
    deliver: bool | None = None
    attachments: list[Any] | None = None
    channel: str | None = None
    replyChannel: str | None = None
    accountId: str | None = None
    replyAccountId: str | None = None
    threadId: str | int | None = None
    groupId: str | None = None
    groupChannel: str | None = None
    groupSpace: str | None = None
    timeout: float | None = Field(default=None, gt=0, description="Seconds.")
    lane: str | None = None
    extraSystemPrompt: str | None = None
    label: str | None = None
    spawnedBy: str | None = None


@method("agent", params=AgentParams, scope="write")
async def agent(call: MethodCall, params: AgentParams) -> dict[str, Any]:
    """Two responses on one id: ``accepted`` at once, then the final result."""
    runtime = await agents_of(call)
    key = params.idempotencyKey
    run = runtime.get_run(key)
    if run is None:
        cached = call.runtime.dedupe.get("agent", key)
        if cached is not None:
            if not cached.ok:
                raise MethodError.from_shape(cached.error)
            return cached.payload  # type: ignore[no-any-return]
        if not params.message.strip() and not params.attachments:
            raise UsageError("message required")
        from moltbot.gateway.methods.chat import store_attachments

        target_agent, target_key = runtime.session_key(params.sessionKey, params.agentId)
        media = await store_attachments(runtime, target_agent, target_key, params.attachments or [])
        run = await runtime.submit(
            params.agentId,
            params.sessionKey,
            params.message,
            run_id=key,
            timeout=params.timeout,
            channel=params.channel or "webchat",
            extra_system=params.extraSystemPrompt,
            media=media,
        )
    accepted = {"runId": run.id, "status": "accepted", "acceptedAt": run.accepted_at}
    if not run.state.finished:
        call.runtime.dedupe.put("agent", key, True, accepted)
        await call.respond_again(accepted)
        assert run.done is not None
        await asyncio.shield(run.done)
    if run.state == "ok":
        payload = final_payload(run)
        call.runtime.dedupe.put("agent", key, True, payload)
        return payload
    error = final_error(run)
    call.runtime.dedupe.put("agent", key, False, None, error.error_shape())
    raise error


class AgentWaitParams(Params):
    runId: str = Field(min_length=1)
    timeoutMs: int = Field(default=30_000, ge=0, le=24 * 3600 * 1000)


@method("agent.wait", params=AgentWaitParams, scope="write")
async def agent_wait(call: MethodCall, params: AgentWaitParams) -> dict[str, Any]:
    runtime = await agents_of(call)
    run = await runtime.wait(params.runId, params.timeoutMs / 1000)
    if run is None:
        return {"runId": params.runId, "status": "timeout"}
    return run.summary()


class AgentIdentityParams(Params):
    agentId: str | None = None
    sessionKey: str | None = None


@method("agents.list", scope="read")
async def agents_list(call: MethodCall, params: NoParams) -> dict[str, Any]:
    return (await agents_of(call)).agents_list()


@method("agent.identity.get", params=AgentIdentityParams, scope="read")
async def agent_identity(call: MethodCall, params: AgentIdentityParams) -> dict[str, Any]:
    runtime = await agents_of(call)
    agent_id, _ = runtime.session_key(params.sessionKey, params.agentId)
    row = next(a for a in runtime.agents_list()["agents"] if a["id"] == agent_id)
    identity = row.get("identity", {})
    out = {"agentId": agent_id}
    if row.get("name"):
        out["name"] = row["name"]
    if identity.get("avatar"):
        out["avatar"] = identity["avatar"]
    return out


@method("models.list", scope="read")
async def models_list(call: MethodCall, params: NoParams) -> dict[str, Any]:
    return (await agents_of(call)).models_list()
