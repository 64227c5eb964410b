"""``POST /v1/chat/completions``: the OpenAI Chat Completions API in front of an agent.

Off unless ``gateway.http.endpoints.chatCompletions.enabled`` (checked per
request, so a config reload applies at once). Auth: ``Authorization: Bearer
<gateway token or password>``. The agent comes from the header
``x-moltbot-agent-id`` (also ``x-openclaw-agent-id``), or ``model`` =
``moltbot:<agentId>`` (``moltbot/…``, ``openclaw:…``, ``agent:…``), else the
default agent. The session is ``x-moltbot-session-key`` if sent, else
``agent:<id>:openai-user:<user>`` when ``user`` is set, else a fresh one per
request. ``system``/``developer`` messages add to the system prompt; the last
user message is the prompt, with earlier turns folded in as context.
Streaming (``stream: true``) answers with SSE chunks ending in ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from moltbot.errors import RetryLaterError
from moltbot.gateway.auth import check_shared

if TYPE_CHECKING:
    from moltbot.agents.run import Run
    from moltbot.agents.runtime import AgentRuntime
    from moltbot.gateway.runtime import GatewayRuntime

PATH = "/v1/chat/completions"
MAX_BODY = 1024 * 1024
_AGENT_PREFIXES = ("moltbot:", "moltbot/", "openclaw:", "openclaw/", "agent:")


def setup_routes(app: web.Application, runtime: GatewayRuntime) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await chat_completions(request, runtime)

    app.router.add_route("*", PATH, handler)


def _error(status: int, message: str, kind: str, **headers: str) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": kind}}, status=status, headers=headers or None
    )


async def chat_completions(request: web.Request, gateway: GatewayRuntime) -> web.StreamResponse:
    if not gateway.config.gateway.http.endpoints.chat_completions.enabled:
        return web.Response(status=404, text="Not Found")
    if request.method != "POST":
        return _error(405, "Method Not Allowed", "invalid_request_error", Allow="POST")
    header = request.headers.get("Authorization", "")
    secret = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not secret or check_shared(gateway.auth, secret, secret) is not None:
        return _error(401, "Unauthorized", "unauthorized")
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _error(413, "request body too large (max 1 MiB)", "invalid_request_error")
    try:
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            return _error(413, "request body too large (max 1 MiB)", "invalid_request_error")
        body = json.loads(raw or b"{}")
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
    except ValueError as exc:
        return _error(400, f"invalid JSON body: {exc}", "invalid_request_error")
    agents: AgentRuntime | None = gateway.subsystem("agents")
    starting = gateway.subsystems.get("agents")
    if agents is None and isinstance(getattr(starting, "ready", None), asyncio.Event):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(starting.ready.wait(), 15)  # type: ignore[union-attr]
        agents = gateway.subsystem("agents")
    if agents is None:
        return _error(503, "the agent runtime is unavailable", "api_error")
    model = str(body.get("model") or "moltbot")
    try:
        agent_id = agents.resolve_agent(_agent_from(request, model))
    except Exception as exc:
        return _error(400, getattr(exc, "message", str(exc)), "invalid_request_error")
    prompt, system = _prompt(body.get("messages"))
    if prompt is None:
        return _error(400, "Missing user message in `messages`.", "invalid_request_error")
    session = request.headers.get("x-moltbot-session-key") or request.headers.get(
        "x-openclaw-session-key"
    )
    if not session:
        user = body.get("user")
        session = (
            f"agent:{agent_id}:openai-user:{user}"
            if isinstance(user, str) and user
            else f"agent:{agent_id}:openai:{uuid.uuid4()}"
        )
    completion_id = f"chatcmpl_{uuid.uuid4().hex}"
    created = int(time.time())
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def watch(event: str, payload: dict[str, Any]) -> None:
        if event == "agent" and payload.get("stream") == "assistant":
            delta = payload["data"].get("delta")
            if delta:
                queue.put_nowait(delta)

    stream = bool(body.get("stream"))
    try:
        run = await agents.submit(
            agent_id,
            session,
            prompt,
            channel="openai-http",
            extra_system=system,
            watcher=watch if stream else None,
        )
    except RetryLaterError as exc:  # restarting: nothing recorded, the client retries
        retry = {"Retry-After": str(max(1, round(exc.retry_after)))}
        return _error(503, exc.message, "server_error", **retry)
    except Exception as exc:
        return _error(400, getattr(exc, "message", str(exc)), "invalid_request_error")
    assert run.done is not None
    if not stream:
        await asyncio.shield(run.done)
        if run.state != "ok":
            return _run_error(run)
        return web.json_response(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": run.text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": _usage(run),
            }
        )

    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()

    run.done.add_done_callback(lambda _f: queue.put_nowait(None))
    try:
        await response.write(chunk({"role": "assistant"}))
        while (delta := await queue.get()) is not None:
            await response.write(chunk({"content": delta}))
        if run.state != "ok":
            message = run.error or f"run {run.state}"
            error = {"error": {"message": message, "type": "api_error"}}
            await response.write(f"data: {json.dumps(error)}\n\n".encode())
        await response.write(chunk({}, "stop" if run.state == "ok" else "error"))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
    except (ConnectionResetError, asyncio.CancelledError):
        with contextlib.suppress(Exception):  # the client went away: stop the run
            await agents.abort(run.session_key, run.id, reason="http client disconnected")
        raise
    return response


def _run_error(run: Run) -> web.Response:
    if run.state == "timeout":
        return _error(504, run.error or "timed out", "timeout")
    return _error(502, run.error or f"run {run.state}", "api_error")


def _usage(run: Run) -> dict[str, int]:
    return {
        "prompt_tokens": run.input_tokens,
        "completion_tokens": run.output_tokens,
        "total_tokens": run.input_tokens + run.output_tokens,
    }


def _agent_from(request: web.Request, model: str) -> str | None:
    for name in ("x-moltbot-agent-id", "x-openclaw-agent-id", "x-openclaw-agent"):
        if request.headers.get(name):
            return request.headers[name]
    lowered = model.lower()
    for prefix in _AGENT_PREFIXES:
        if lowered.startswith(prefix) and len(model) > len(prefix):
            return model[len(prefix) :]
    return None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "")
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "input_text")
        )
    return ""


def _prompt(messages: Any) -> tuple[str | None, str | None]:
    """(the prompt with earlier turns folded in, extra system prompt)."""
    if not isinstance(messages, list):
        return None, None
    system = [
        _text(m.get("content"))
        for m in messages
        if isinstance(m, dict) and m.get("role") in ("system", "developer")
    ]
    turns = [
        m
        for m in messages
        if isinstance(m, dict) and m.get("role") in ("user", "assistant", "tool")
    ]
    last = max((i for i, m in enumerate(turns) if m.get("role") in ("user", "tool")), default=None)
    if last is None:
        return None, None
    current = _text(turns[last].get("content"))
    if not current.strip():
        return None, None
    earlier = [
        f"{m['role'].capitalize()}: {_text(m.get('content'))}"
        for m in turns[:last]
        if _text(m.get("content")).strip()
    ]
    prompt = current
    if earlier:
        prompt = (
            "[Chat history for context]\n"
            + "\n".join(earlier)
            + "\n\n[Current message - respond to this]\n"
            + current
        )
    extra = "\n\n".join(s for s in system if s.strip()) or None
    return prompt, extra
