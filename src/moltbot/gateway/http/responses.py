"""``POST /v1/responses``: one agent turn answered in the OpenAI Responses shape.

Routed by :mod:`moltbot.gateway.http.openai`, which imports this module at the first
request (the gateway's start does not wait for it).

Off unless ``gateway.http.endpoints.responses.enabled`` (read per request; while
off: 404 after the auth check). Behind the gateway token like every API
(:mod:`moltbot.gateway.http.api`).

- ``input``: a string, or items: messages (``{role, content}``, with or without
  ``type: "message"``; content a string or ``input_text``/``output_text``
  parts) and ``function_call_output`` (as a tool message). Images and files are
  refused (400). The last user (or tool) item is the message; earlier ones are
  context, as in Chat Completions.
- ``instructions`` (and ``system``/``developer`` items) join the agent's system
  prompt. ``model`` chooses the agent (``moltbot``, ``moltbot:<id>``), as
  ``x-moltbot-agent-id`` does; ``user`` or the session headers keep a
  conversation (``agent:<id>:openresponses-user:<user>``); without them each
  request is its own session. ``previous_response_id`` is refused (use
  ``user``). ``tools``, ``tool_choice``, sampling fields and
  ``max_output_tokens`` are accepted and ignored: the agent's config decides.
- Not streamed: a ``response`` object (``id: resp_...``, ``status:
  "completed"``, one assistant ``message`` with one ``output_text``, ``usage``).
- ``stream: true``: SSE ``event: <type>`` / ``data: <json>`` in OpenAI's order
  (``response.created``, ``response.in_progress``, ``response.output_item.added``,
  ``response.content_part.added``, ``response.output_text.delta``...,
  ``response.output_text.done``, ``response.content_part.done``,
  ``response.output_item.done``, ``response.completed``), then ``data: [DONE]``.
  A run that fails before any text is answered with its real status (as Chat
  Completions); after text, with ``response.failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from moltbot.agents.run import Run, RunState
from moltbot.gateway.http.api import ApiError, json_response, read_json, require_method
from moltbot.gateway.http.openai.completions import (
    RESET,
    STREAM_RESTARTED,
    agent_runtime,
    choose_agent,
    run_failure,
)
from moltbot.gateway.http.openai.models import model_id
from moltbot.gateway.http.openai.request import ChatMessage, Prompt, build_prompt, session_for
from moltbot.validation import BaseModel, ConfigDict, ValidationError

if TYPE_CHECKING:
    from moltbot.agents.runtime import AgentRuntime
    from moltbot.config.schema import ResponsesEndpoint
    from moltbot.gateway.runtime import GatewayRuntime

CHANNEL = "openresponses-http"
SETTING = "gateway.http.endpoints.responses.maxBodyBytes"
MAX_ITEMS = 1000
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
_TEXT_PARTS = ("input_text", "output_text", "text")


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class ResponsesRequest(_Body):
    model: str | None = None
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    stream: bool = False
    user: str | None = None
    previous_response_id: str | None = None
    metadata: dict[str, Any] | None = None


def endpoint(gateway: GatewayRuntime) -> ResponsesEndpoint:
    settings = gateway.config.gateway.http.endpoints.responses
    if not settings.enabled:
        raise ApiError(
            404,
            "The Responses API is disabled on this gateway; enable it with "
            "`moltbot config set gateway.http.endpoints.responses.enabled true`.",
            code="endpoint_disabled",
        )
    return settings


def parse(body: Any) -> ResponsesRequest:
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    if isinstance(body.get("input"), list) and len(body["input"]) > MAX_ITEMS:
        raise ApiError(400, f"Too many input items (limit {MAX_ITEMS}).", param="input")
    try:
        request = ResponsesRequest.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(400, f"Invalid `{param}`: {first['msg']}.", param=param) from None
    if request.previous_response_id:
        raise ApiError(
            400,
            "previous_response_id is not supported: keep a conversation with `user` "
            "(or the X-Moltbot-Session header) instead.",
            param="previous_response_id",
            code="unsupported_parameter",
        )
    return request


def messages_of(request: ResponsesRequest) -> list[ChatMessage]:
    """The input as chat messages; 400 for kinds the gateway does not take."""
    if isinstance(request.input, str):
        return [ChatMessage(role="user", content=request.input)]
    out: list[ChatMessage] = []
    for index, item in enumerate(request.input):
        kind = item.get("type", "message")
        if kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else orjson.dumps(output).decode()
            out.append(ChatMessage(role="tool", content=text))
            continue
        if kind == "function_call":
            continue  # the client's own tool call: its output item carries what matters
        if kind != "message":
            raise ApiError(
                400, f"input[{index}]: items of type {kind!r} are not supported.", param="input"
            )
        role = item.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise ApiError(
                400, f"input[{index}].role must be user, assistant, system or developer."
            )
        out.append(ChatMessage(role=role, content=_text(item.get("content"), index)))
    return out


def _text(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ApiError(400, f"input[{index}].content must be a string or a list of parts.")
    texts = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in _TEXT_PARTS:
            texts.append(str(part.get("text") or ""))
        else:
            raise ApiError(
                400,
                f"input[{index}]: content parts of type {kind!r} (images, files) are not "
                "supported; send text.",
                param="input",
                code="unsupported_content",
            )
    return "".join(texts)


async def responses(request: web.Request, gateway: GatewayRuntime) -> web.StreamResponse:
    settings = endpoint(gateway)
    require_method(request, "POST")
    body = parse(await read_json(request, settings.max_body_bytes, SETTING))
    agents = await agent_runtime(gateway)
    agent_id = choose_agent(agents, request.headers, body.model)
    session = session_for(agent_id, request.headers, body.user, prefix="openresponses")
    _, key = agents.session_key(session.key, agent_id)
    continuing = session.stable and await agents.store(agent_id).get(key) is not None
    prompt = build_prompt(messages_of(body), history=not continuing)
    system = "\n\n".join(s for s in (body.instructions, prompt.system) if s and s.strip()) or None
    if not agents.models.configured(agent_id):
        raise ApiError(
            503,
            f"No AI model is configured for agent {agent_id}: set agents.defaults.model.",
            code="model_not_configured",
        )
    shape = Shape(f"resp_{uuid.uuid4().hex}", f"msg_{uuid.uuid4().hex}", model_id(agent_id), body)
    if body.stream:
        return await _stream(request, agents, agent_id, key, Prompt(prompt.text, system), shape)
    run = await agents.submit(agent_id, key, prompt.text, channel=CHANNEL, extra_system=system)
    assert run.done is not None
    await asyncio.shield(run.done)
    if run.state != RunState.OK:
        raise run_failure(run, agents)
    if run.stop_reason == "notice":
        raise ApiError(503, run.text, code="model_not_configured")
    return json_response(shape.response("completed", [shape.message(run.text, True)], run))


class Shape:
    """The objects of one answer (ids and request echo shared by all)."""

    def __init__(self, response_id: str, message_id: str, model: str, body: ResponsesRequest):
        self.id = response_id
        self.message_id = message_id
        self.model = model
        self.created = int(time.time())
        self.body = body
        self.seq = 0

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        run: Run | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        usage = None
        if run is not None:
            usage = {
                "input_tokens": run.input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": run.output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": run.input_tokens + run.output_tokens,
            }
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.model,
            "output": output,
            "usage": usage,
            "error": error,
            "incomplete_details": None,
            "instructions": self.body.instructions,
            "metadata": self.body.metadata or {},
            "parallel_tool_calls": True,
            "temperature": None,
            "top_p": None,
            "tool_choice": "auto",
            "tools": [],
            "user": self.body.user,
        }

    def part(self, text: str) -> dict[str, Any]:
        return {"type": "output_text", "text": text, "annotations": []}

    def message(self, text: str, done: bool) -> dict[str, Any]:
        return {
            "type": "message",
            "id": self.message_id,
            "status": "completed" if done else "in_progress",
            "role": "assistant",
            "content": [self.part(text)] if done else [],
        }

    def event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return f"event: {kind}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"

    def item_fields(self) -> dict[str, Any]:
        return {"item_id": self.message_id, "output_index": 0, "content_index": 0}


async def _stream(
    request: web.Request,
    agents: AgentRuntime,
    agent_id: str,
    key: str,
    prompt: Prompt,
    shape: Shape,
) -> web.StreamResponse:
    queue: asyncio.Queue[Any] = asyncio.Queue()  # text, RESET or None (the end)

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
    try:
        delta = await queue.get()
        while delta is RESET:  # nothing sent yet: a retried model is invisible
            delta = await queue.get()
        if delta is None and run.state != RunState.OK:
            raise run_failure(run, agents)  # nothing sent yet: a real status
        await response.prepare(request)
        await response.write(
            shape.event("response.created", response=shape.response("in_progress", []))
        )
        await response.write(
            shape.event("response.in_progress", response=shape.response("in_progress", []))
        )
        await response.write(
            shape.event("response.output_item.added", output_index=0, item=shape.message("", False))
        )
        await response.write(
            shape.event("response.content_part.added", **shape.item_fields(), part=shape.part(""))
        )
        text = ""
        while delta is not None:
            if delta is RESET:
                # text already sent cannot be taken back; the run goes on (kept in the
                # session's transcript) but this stream ends
                error = {"code": STREAM_RESTARTED.code, "message": STREAM_RESTARTED.message}
                await response.write(
                    shape.event(
                        "response.failed",
                        response=shape.response(
                            "failed", [shape.message(text, False)], None, error
                        ),
                    )
                )
                await response.write(b"data: [DONE]\n\n")
                await response.write_eof()
                return response
            text += delta
            await response.write(
                shape.event(
                    "response.output_text.delta", **shape.item_fields(), delta=delta, logprobs=[]
                )
            )
            delta = await queue.get()
        if run.state == RunState.OK:
            text = run.text or text
            item = shape.message(text, True)
            await response.write(
                shape.event(
                    "response.output_text.done", **shape.item_fields(), text=text, logprobs=[]
                )
            )
            await response.write(
                shape.event(
                    "response.content_part.done", **shape.item_fields(), part=shape.part(text)
                )
            )
            await response.write(
                shape.event("response.output_item.done", output_index=0, item=item)
            )
            await response.write(
                shape.event("response.completed", response=shape.response("completed", [item], run))
            )
        else:
            failure = run_failure(run, agents)
            error = {"code": failure.code or "server_error", "message": failure.message}
            partial = shape.message(text, False)
            await response.write(
                shape.event(
                    "response.failed", response=shape.response("failed", [partial], run, error)
                )
            )
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
    except ConnectionResetError:
        await _abort(agents, run)
    except asyncio.CancelledError:
        await _abort(agents, run)
        raise
    return response


async def _abort(agents: AgentRuntime, run: Run) -> None:
    if not run.state.finished:
        with contextlib.suppress(Exception):
            await agents.abort(run.session_key, run.id, reason="http client disconnected")


__all__ = ["responses"]
