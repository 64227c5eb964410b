"""``POST /v1/chat/completions``: one agent turn per request, answered in OpenAI's shape.

The reply is the agent's whole turn (its tools run inside the gateway);
``usage`` adds up the token counts the provider reported for every model call
of the turn; ``finish_reason`` is the last model call's: ``stop``, ``length``
(the model hit its output limit), ``tool_calls`` (the turn ended on a tool
step), ``content_filter``.

A run that fails is answered with an error, not a reply: 429 when the models
are rate-limited, 503 when they are unavailable (both with ``Retry-After``
while the agent's models cool down), 502 when the provider refused the
request, 504 when the run timed out, 503 when it was aborted, 500 for an
internal error. A streamed request gets these as real statuses too, as long
as nothing was streamed yet; after that, as an ``error`` event before
``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from moltbot.agents.run import Run, RunState
from moltbot.gateway.http.api import ApiError, json_response, read_json, require_method
from moltbot.gateway.http.openai.models import agent_for, model_id, unknown_model
from moltbot.gateway.http.openai.request import (
    ChatRequest,
    Prompt,
    build_prompt,
    parse_request,
    requested_agent,
    session_for,
)
from moltbot.subsystems import AGENTS

if TYPE_CHECKING:
    from moltbot.agents.runtime import AgentRuntime
    from moltbot.config.schema import ChatCompletionsEndpoint
    from moltbot.gateway.runtime import GatewayRuntime

CHANNEL = "openai-http"
AGENTS_START_WAIT_S = 15.0
FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "toolUse": "tool_calls",
    "error": "content_filter",  # a run that ends OK with "error" was refused by the model
}
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


def endpoint(gateway: GatewayRuntime) -> ChatCompletionsEndpoint:
    """The endpoint's settings (read per request: a config reload applies at once);
    404 while it is disabled."""
    settings = gateway.config.gateway.http.endpoints.chat_completions
    if not settings.enabled:
        raise ApiError(
            404,
            "The OpenAI-compatible API is disabled on this gateway; enable it with "
            "`moltbot config set gateway.http.endpoints.chatCompletions.enabled true`.",
            code="endpoint_disabled",
        )
    return settings


async def chat_completions(request: web.Request, gateway: GatewayRuntime) -> web.StreamResponse:
    settings = endpoint(gateway)
    require_method(request, "POST")
    chat = parse_request(await read_json(request, settings.max_body_bytes), settings.max_messages)
    agents = await agent_runtime(gateway)
    agent_id = choose_agent(agents, request.headers, chat.model)
    key, prompt = await conversation(agents, agent_id, request.headers, chat)
    if not agents.models.configured(agent_id):
        raise ApiError(
            503,
            f"No AI model is configured for agent {agent_id}: set agents.defaults.model "
            "(and its provider's API key), or run `moltbot onboard`.",
            code="model_not_configured",
        )
    reply = Reply(f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), model_id(agent_id))
    if chat.stream:
        return await _stream(request, agents, agent_id, key, prompt, chat, reply)
    run = await agents.submit(
        agent_id, key, prompt.text, channel=CHANNEL, extra_system=prompt.system
    )
    assert run.done is not None
    await asyncio.shield(run.done)
    if run.state != RunState.OK:
        raise run_failure(run, agents)
    if run.stop_reason == "notice":  # no model could be called after all
        raise ApiError(503, run.text, code="model_not_configured")
    return json_response(reply.completion(run))


async def conversation(
    agents: AgentRuntime, agent_id: str, headers: Mapping[str, str], chat: ChatRequest
) -> tuple[str, Prompt]:
    """(the canonical session key, the prompt); 400 for a session key of another agent
    or a request without a user message."""
    session = session_for(agent_id, headers, chat.user)
    _, key = agents.session_key(session.key, agent_id)
    # A conversation the gateway already holds needs no history folded in (it would
    # be in the transcript twice, and again with every turn).
    continuing = session.stable and await agents.store(agent_id).get(key) is not None
    return key, build_prompt(chat.messages, history=not continuing)


async def agent_runtime(gateway: GatewayRuntime) -> AgentRuntime:
    """The running agent runtime; waits briefly while it starts, else 503."""
    agents = gateway.subsystem(AGENTS)
    starting = gateway.registered(AGENTS)
    if agents is None and starting is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(starting.ready.wait(), AGENTS_START_WAIT_S)
        agents = gateway.subsystem(AGENTS)
    if agents is None:
        raise ApiError(503, "The agent runtime is not running.", code="agents_unavailable")
    return agents


def choose_agent(agents: AgentRuntime, headers: Mapping[str, str], model: str | None) -> str:
    """The header ``x-moltbot-agent-id`` if sent, else the agent ``model`` names; a
    missing ``model`` means the default agent."""
    ids = agents.agent_ids()
    named = requested_agent(headers)
    if named is not None:
        if named not in ids:
            raise ApiError(
                400,
                f"Unknown agent {named!r} in the agent-id header; agents: {', '.join(ids)}.",
                code="agent_not_found",
            )
        return named
    default = agents.resolve_agent(None)
    if model is None or not model.strip():
        return default
    agent = agent_for(model, ids, default)
    if agent is None:
        raise unknown_model(model, ids)
    return agent


def run_failure(run: Run, agents: AgentRuntime) -> ApiError:
    """The error a failed, timed-out or aborted run is answered with."""
    message = run.error or f"the agent run ended: {run.state}"
    if run.state == RunState.TIMEOUT:
        return ApiError(504, message, code="timeout")
    if run.state == RunState.ABORTED:
        why = f" ({run.abort_reason})" if run.abort_reason else ""
        return ApiError(503, f"The agent run was aborted{why}.", code="run_aborted")
    retry_after = agents.models.retry_after(run.agent_id)
    if run.error_kind == "rate_limit":
        return ApiError(429, message, code="rate_limit_exceeded", retry_after=retry_after)
    if run.error_kind == "bad_request":
        return ApiError(502, message, code="model_rejected_request")
    if run.error_kind is not None:
        return ApiError(503, message, code="model_unavailable", retry_after=retry_after)
    return ApiError(500, message, code="internal_error")


def finish_reason(run: Run) -> str:
    return FINISH_REASONS.get(run.stop_reason or "stop", "stop")


def usage(run: Run) -> dict[str, int]:
    return {
        "prompt_tokens": run.input_tokens,
        "completion_tokens": run.output_tokens,
        "total_tokens": run.input_tokens + run.output_tokens,
    }


@dataclass(frozen=True)
class Reply:
    """The identity every object of one answer carries."""

    id: str
    created: int
    model: str

    def completion(self, run: Run) -> dict[str, Any]:
        message = {"role": "assistant", "content": run.text}
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(run)}],
            "usage": usage(run),
        }

    def chunk(
        self,
        delta: dict[str, Any] | None,
        finish: str | None = None,
        *,
        with_usage: bool = False,
        run: Run | None = None,
    ) -> bytes:
        """One SSE ``chat.completion.chunk``; ``delta=None`` is the usage-only chunk."""
        data: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if with_usage:  # as OpenAI: null on every chunk but the last one
            data["usage"] = usage(run) if run is not None and delta is None else None
        return sse(data)


class _Reset:
    """Queue marker: the model failed mid-answer and is being tried again."""


RESET = _Reset()
STREAM_RESTARTED = ApiError(
    502,
    "The model's stream broke after part of the answer was sent. The gateway tried the "
    "model again, but a stream cannot take text back: send the request again (with a "
    "stable session the answer is also kept in its transcript).",
    code="stream_restarted",
)


def sse(data: Any) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


async def _stream(
    request: web.Request,
    agents: AgentRuntime,
    agent_id: str,
    key: str,
    prompt: Prompt,
    chat: ChatRequest,
    reply: Reply,
) -> web.StreamResponse:
    """SSE chunks as the agent writes; headers wait for the first text, so a run
    that fails before writing anything is answered with its real status."""
    queue: asyncio.Queue[str | _Reset | None] = asyncio.Queue()

    def watch(event: str, payload: dict[str, Any]) -> None:
        if event == "agent" and payload.get("stream") == "assistant":
            if payload["data"].get("reset"):  # a failed try's partial text was taken back
                queue.put_nowait(RESET)
            elif delta := payload["data"].get("delta"):
                queue.put_nowait(delta)

    run = await agents.submit(
        agent_id, key, prompt.text, channel=CHANNEL, extra_system=prompt.system, watcher=watch
    )
    assert run.done is not None
    run.done.add_done_callback(lambda _f: queue.put_nowait(None))
    response = web.StreamResponse(headers=_SSE_HEADERS)
    with_usage = chat.include_usage
    try:
        delta = await queue.get()
        while delta is RESET:  # nothing sent yet: a retried model is invisible
            delta = await queue.get()
        if delta is None and run.state != RunState.OK:
            raise run_failure(run, agents)
        await response.prepare(request)
        role = {"role": "assistant", "content": ""}
        await response.write(reply.chunk(role, with_usage=with_usage))
        while delta is not None:
            if isinstance(delta, _Reset):
                # Text already sent cannot be taken back: end this stream with an error.
                # The run goes on and its answer is kept in the session's transcript.
                await response.write(sse(STREAM_RESTARTED.body()))
                await response.write(b"data: [DONE]\n\n")
                await response.write_eof()
                return response
            await response.write(reply.chunk({"content": delta}, with_usage=with_usage))
            delta = await queue.get()
        if run.state == RunState.OK:
            await response.write(reply.chunk({}, finish_reason(run), with_usage=with_usage))
            if with_usage:
                await response.write(reply.chunk(None, with_usage=True, run=run))
        else:
            await response.write(sse(run_failure(run, agents).body()))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
    except ConnectionResetError:  # the client went away: stop the run
        await _abort(agents, run)
    except asyncio.CancelledError:
        await _abort(agents, run)
        raise
    return response


async def _abort(agents: AgentRuntime, run: Run) -> None:
    if not run.state.finished:
        with contextlib.suppress(Exception):
            await agents.abort(run.session_key, run.id, reason="http client disconnected")
