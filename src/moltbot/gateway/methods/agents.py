"""``agent`` (two-stage), ``agent.wait``, ``agents.list``, ``models.list``."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from moltbot.errors import MethodError, MoltbotError, RetryLaterError, UsageError
from moltbot.gateway import protocol
from moltbot.gateway.methods.registry import MethodCall, NoParams, Params, method
from moltbot.lifecycle import State
from moltbot.subsystems import AGENTS
from moltbot.validation import Field

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


def final_payload(run: Run, session_id: str | None = None) -> dict[str, Any]:
    """The second answer of ``agent``: upstream's ``result {payloads, meta}`` (what its
    CLI prints) plus ``text``, ``sessionKey``, ``model``, ``usage``, ``stopReason``."""
    provider, _, model = (run.model or "").rpartition("/")
    agent_meta: dict[str, Any] = {"provider": provider or None, "model": model or run.model}
    agent_meta["usage"] = {"input": run.input_tokens, "output": run.output_tokens}
    if session_id:
        agent_meta["sessionId"] = session_id
    meta: dict[str, Any] = {
        "durationMs": max(
            0, (run.ended_at or run.accepted_at) - (run.started_at or run.accepted_at)
        ),
        "agentMeta": agent_meta,
        "aborted": False,
    }
    if run.stop_reason:
        meta["stopReason"] = run.stop_reason
    return {
        "runId": run.id,
        "status": "ok",
        "summary": "completed",
        "result": {
            "payloads": [{"text": run.text, "mediaUrl": None}] if run.text else [],
            "meta": meta,
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
        entry = await runtime.store(run.agent_id).get(run.session_key)
        payload = final_payload(run, entry.session_id if entry is not None else None)
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


IDENTITY_KEYS = ("name", "theme", "emoji", "avatar", "avatarUrl")
DEFAULT_NAME = "Assistant"
DEFAULT_AVATAR = "A"


@method("agents.list", scope="read")
async def agents_list(call: MethodCall, params: NoParams) -> dict[str, Any]:
    """Upstream's ``AgentsListResult``: ``{id, name?, identity?}`` per agent (workspace and
    model stay with ``moltbot agents``)."""
    listing = (await agents_of(call)).agents_list()
    rows = []
    for row in listing["agents"]:
        out: dict[str, Any] = {"id": row["id"]}
        if row.get("name"):
            out["name"] = row["name"]
        identity = {k: v for k, v in (row.get("identity") or {}).items() if k in IDENTITY_KEYS}
        if identity:
            out["identity"] = identity
        rows.append(out)
    return {**listing, "agents": rows}


@method("agent.identity.get", params=AgentIdentityParams, scope="read")
async def agent_identity(call: MethodCall, params: AgentIdentityParams) -> dict[str, Any]:
    """``{agentId, name, avatar}``; an agent without a name is "Assistant" (also an unknown
    one, as upstream); an ``agentId`` that contradicts ``sessionKey`` is refused."""
    from moltbot.sessions.keys import agent_of, normalize_key

    runtime = await agents_of(call)
    wanted = (params.agentId or "").strip().lower() or None
    if params.sessionKey and params.sessionKey.strip():
        of_key = agent_of(normalize_key(params.sessionKey, runtime.resolve_agent(None)))
        if wanted and of_key and of_key != wanted:
            raise UsageError(
                f'invalid agent.identity.get params: agent "{params.agentId}" does not match '
                f'session key agent "{of_key}"'
            )
        wanted = of_key or wanted
    agent_id = wanted or runtime.resolve_agent(None)
    row = next((a for a in runtime.agents_list()["agents"] if a["id"] == agent_id), {})
    identity = row.get("identity") or {}
    return {
        "agentId": agent_id,
        "name": row.get("name") or identity.get("name") or DEFAULT_NAME,
        "avatar": identity.get("avatar") or identity.get("emoji") or DEFAULT_AVATAR,
    }


@method("models.list", scope="read")
async def models_list(call: MethodCall, params: NoParams) -> dict[str, Any]:
    """The configured catalogue plus the providers' known models (upstream's
    ``ModelChoice`` rows: ``{id, name, provider, contextWindow?, reasoning?}``)."""
    return await (await agents_of(call)).known_models()
