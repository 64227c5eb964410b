"""``agent`` (two-stage), ``agent.wait``, ``agents.list``, ``models.list``."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from pydantic import Field

from moltbot.errors import MoltbotError, NotFoundError, RetryLaterError, UsageError
from moltbot.gateway import protocol
from moltbot.gateway.methods.registry import MethodCall, MethodError, NoParams, Params, method
from moltbot.lifecycle import State

if TYPE_CHECKING:
    from moltbot.agents.run import Run
    from moltbot.agents.runtime import AgentRuntime


STARTUP_WAIT_S = 15.0


async def agents_of(call: MethodCall) -> AgentRuntime:
    """The running agent runtime (waiting briefly while it starts), or UNAVAILABLE
    (retryable while the gateway restarts)."""
    runtime = call.runtime.subsystem("agents")
    if runtime is None and call.runtime.state in (State.STOPPING, State.STOPPED):
        raise MethodError(
            protocol.UNAVAILABLE,
            "the gateway is restarting; send it again in a moment",
            retryable=True,
            retry_after_ms=2000,
        )
    if runtime is None:
        starting = call.runtime.subsystems.get("agents")
        ready = getattr(starting, "ready", None)
        if isinstance(ready, asyncio.Event) and "agents" not in call.runtime.subsystem_errors:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), STARTUP_WAIT_S)
            runtime = call.runtime.subsystem("agents")
    if runtime is None:
        reason = call.runtime.subsystem_errors.get("agents", "not running")
        raise MethodError(protocol.UNAVAILABLE, f"the agent runtime is unavailable ({reason})")
    return runtime  # type: ignore[no-any-return]


def invalid(exc: MoltbotError) -> MethodError:
    if isinstance(exc, RetryLaterError):
        return MethodError(
            protocol.UNAVAILABLE,
            exc.message,
            retryable=True,
            retry_after_ms=int(exc.retry_after * 1000),
        )
    return MethodError(protocol.INVALID_REQUEST, exc.message)


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
                raise MethodError(**_error_kwargs(cached.error))
            return cached.payload  # type: ignore[no-any-return]
        if params.attachments:
            raise MethodError(protocol.INVALID_REQUEST, "attachments are not supported yet")
        if not params.message.strip():
            raise MethodError(protocol.INVALID_REQUEST, "message required")
        try:
            run = await runtime.submit(
                params.agentId,
                params.sessionKey,
                params.message,
                run_id=key,
                timeout=params.timeout,
                channel=params.channel or "webchat",
                extra_system=params.extraSystemPrompt,
            )
        except (UsageError, NotFoundError) as exc:
            raise invalid(exc) from None
        except MoltbotError as exc:
            raise MethodError(
                protocol.INVALID_REQUEST
                if "unknown agent" in exc.message
                else protocol.UNAVAILABLE,
                exc.message,
            ) from None
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
    call.runtime.dedupe.put("agent", key, False, None, error.shape())
    raise error


def _error_kwargs(shape: Any) -> dict[str, Any]:
    shape = shape or {}
    return {
        "code": shape.get("code", protocol.UNAVAILABLE),
        "message": shape.get("message", "failed"),
        "details": shape.get("details"),
    }


class AgentWaitParams(Params):
    runId: str = Field(min_length=1)
    timeoutMs: int = Field(default=30_000, ge=0, le=24 * 3600 * 1000)


@method("agent.wait", params=AgentWaitParams, scope="write")
async def agent_wait(call: MethodCall, params: AgentWaitParams) -> dict[str, Any]:
    runtime = await agents_of(call)
    try:
        run = await runtime.wait(params.runId, params.timeoutMs / 1000)
    except NotFoundError as exc:
        raise invalid(exc) from None
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
    try:
        agent_id, _ = runtime.session_key(params.sessionKey, params.agentId)
    except MoltbotError as exc:
        raise invalid(exc) from None
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
