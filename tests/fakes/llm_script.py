"""Scripts for the stand-in LLM servers (:mod:`llm_openai`, :mod:`llm_anthropic`).

A test queues steps; each model request takes the next one (per model first,
then the shared queue); with nothing queued the server echoes the last user
message (``"echo: <text>"``). Every request body is recorded in ``requests``.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    """A streamed answer: text in chunks, then optional tool calls."""

    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    chunk_chars: int = 6
    first_delay: float = 0.0
    chunk_delay: float = 0.0
    usage: tuple[int, int] = (12, 7)
    cut: str | None = None
    """``"abort"``: drop the connection mid-stream; ``"eof"``: end without the final events."""
    hang: bool = False
    """Send the headers and nothing else until the client goes away."""
    raw_arguments: str | None = None
    """Send these raw (possibly invalid) arguments for the first tool call."""
    finish: str | None = None
    """The ``finish_reason`` to send (default: ``tool_calls`` or ``stop``)."""
    gate: asyncio.Event | None = None
    """When set: after ``gate_after`` chunks, wait for this event before the rest."""
    gate_after: int = 1
    stamps: int = 0
    """Send this many text chunks, each the time it is sent (ms since the epoch, then a
    space), instead of ``text``: a client can tell each delta's lag from the model."""
    burst: bool = False
    """Send all text chunks in one write, as a provider (or a proxy) that buffered
    them: the client reads them at once. Not with ``chunk_delay``, ``gate`` or ``cut``."""

    def arguments(self, index: int) -> str:
        """The arguments text of tool call ``index`` as sent."""
        if index == 0 and self.raw_arguments is not None:
            return self.raw_arguments
        return dumps(self.tool_calls[index][1])


@dataclass
class Fail:
    status: int
    message: str = "scripted failure"
    headers: dict[str, str] = field(default_factory=dict)


Step = Reply | Fail


class Script:
    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.queue: deque[Step] = deque()
        self.by_model: dict[str, deque[Step]] = {}
        self.always: dict[str, Step] = {}
        self.requests: list[dict[str, Any]] = []
        self.known_models: list[str] = []
        """What ``GET /v1/models`` lists."""
        self.transcriptions: list[dict[str, Any]] = []
        self.transcript: str | None = None
        self.default_first_delay = 0.0
        self.default_chunk_delay = 0.0
        self.default_chunk_chars = 6
        self._port: int | None = None
        self._runner: Any = None
        self.active = 0
        self.context_window: int | None = None
        """When set, a request whose prompt is larger is refused as too long (HTTP 400,
        the provider's own words), and ``usage`` reports the prompt's real size."""
        self.responder: Any = None
        """``responder(body) -> Step | None``: answers a request before the queue does
        (a test's model logic, e.g. for summary requests)."""
        self.refused: list[int] = []
        """The prompt size of each request refused for its length."""

    # -- scripting -----------------------------------------------------------

    def push(self, *steps: Step, model: str | None = None) -> None:
        target = self.queue if model is None else self.by_model.setdefault(model, deque())
        target.extend(steps)

    def always_for(self, model: str, step: Step) -> None:
        """Answer every request for ``model`` with ``step`` (e.g. a permanent 429)."""
        self.always[model] = step

    def next_step(self, body: dict[str, Any]) -> Step:
        if self.responder is not None:
            step = self.responder(body)
            if step is not None:
                return step
        model = str(body.get("model", ""))
        if model in self.always:
            return self.always[model]
        own = self.by_model.get(model)
        if own:
            return own.popleft()
        if self.queue:
            return self.queue.popleft()
        return Reply(
            f"echo: {last_user_text(body)}",
            first_delay=self.default_first_delay,
            chunk_delay=self.default_chunk_delay,
            chunk_chars=self.default_chunk_chars,
        )

    # -- lifecycle -----------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._port is not None, "server not started"
        return self._port

    def app(self) -> Any:
        raise NotImplementedError

    async def start(self) -> None:
        from aiohttp import web

        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Script:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def prompt_tokens(body: dict[str, Any]) -> int:
    """The prompt's size in tokens as this stand-in counts them: 4 bytes of its JSON
    (messages or system, plus tools) per token."""
    parts = [body.get("system"), body.get("messages"), body.get("tools")]
    return len(json.dumps([p for p in parts if p], ensure_ascii=False).encode()) // 4


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts = [
                b.get("text", "")
                for b in content
                if isinstance(b, dict) and b.get("type") == "text"
            ]
            if texts:
                return " ".join(texts)
    return ""


def chunks(text: str, size: int) -> list[str]:
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)]


async def open_event_stream(request: Any) -> Any:
    """A prepared ``text/event-stream`` response (headers sent)."""
    from aiohttp import web

    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    return response


async def cut_stream(request: Any, response: Any, how: str) -> Any:
    """End ``response`` early, as :attr:`Reply.cut` says."""
    if how == "abort" and request.transport is not None:
        request.transport.abort()
    else:
        await response.write_eof()
    return response


async def hang_until_gone(request: Any, limit: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(0.02)


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))
