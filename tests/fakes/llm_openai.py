"""A stand-in OpenAI Chat Completions server (the real SSE wire format)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from tests.fakes.llm_script import (
    Fail,
    Reply,
    Script,
    chunks,
    cut_stream,
    dumps,
    hang_until_gone,
    open_event_stream,
    prompt_tokens,
)

SYNONYMS = {"automobile": "car", "vehicle": "car", "auto": "car", "feline": "cat", "kitty": "cat"}


def embed(text: str, dims: int = 64) -> list[float]:
    import hashlib
    import re

    vector = [0.0] * dims
    for word in re.findall(r"\w+", text.lower()):
        word = SYNONYMS.get(word, word)
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dims] += 1.0
    return vector


class FakeOpenAI(Script):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.embedding_requests: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/audio/speech", self._speech)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/__fake__/requests", self._stats)
        return app

    async def _speech(self, request: web.Request) -> web.Response:
        """OpenAI's speech endpoint: audio bytes for ``input`` (here an ID3 tag and the text)."""
        body = await request.json()
        self.requests.append({"body": body, "headers": dict(request.headers), "speech": True})
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided", "invalid_request_error")
        audio = b"ID3\x04\x00" + str(body.get("input", "")).encode()
        return web.Response(body=audio, content_type="audio/mpeg")

    async def _stats(self, request: web.Request) -> web.Response:
        """What the stand-in itself spent per request (for benchmarks)."""
        return web.json_response(
            [
                {"model": r["body"].get("model"), "firstTokenMs": r.get("firstTokenMs")}
                for r in self.requests
            ]
        )

    async def _transcriptions(self, request: web.Request) -> web.Response:
        """``audio/transcriptions`` (multipart: ``file``, ``model``): answers with
        ``transcript`` (or "transcript of <file name>")."""
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided", "invalid_request_error")
        form: dict[str, Any] = {}
        reader = await request.multipart()
        async for part in reader:
            if part.filename:
                form[part.name] = {"filename": part.filename, "data": bytes(await part.read())}
            else:
                form[part.name] = await part.text()
        self.transcriptions.append(form)
        name = (form.get("file") or {}).get("filename")
        return web.json_response({"text": self.transcript or f"transcript of {name}"})

    async def _embeddings(self, request: web.Request) -> web.Response:
        """``POST /v1/embeddings``: a bag of words hashed into 64 dimensions, words of one
        :data:`SYNONYMS` group sharing a dimension (so meaning can match without words)."""
        body = await request.json()
        self.embedding_requests.append(body)
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided", "invalid_request_error")
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        data = [
            {"object": "embedding", "index": i, "embedding": embed(text)}
            for i, text in enumerate(texts)
        ]
        usage = {"prompt_tokens": sum(len(t) // 4 for t in texts), "total_tokens": 0}
        return web.json_response(
            {"object": "list", "data": data, "model": body.get("model"), "usage": usage}
        )

    async def _models(self, request: web.Request) -> web.Response:
        """The models the server says it has (``known_models``; none by default)."""
        data = [{"id": m, "object": "model", "owned_by": "fake"} for m in self.known_models]
        return web.json_response({"object": "list", "data": data})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        arrived = asyncio.get_running_loop().time()
        body = await request.json()
        self.requests.append({"body": body, "headers": dict(request.headers), "arrived": arrived})
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided", "invalid_request_error")
        size = prompt_tokens(body)
        if self.context_window is not None and size > self.context_window:
            self.refused.append(size)
            return web.json_response(
                {
                    "error": {
                        "message": f"This model's maximum context length is "
                        f"{self.context_window} tokens. However, your messages resulted in "
                        f"{size} tokens. Please reduce the length of the messages.",
                        "type": "invalid_request_error",
                        "param": "messages",
                        "code": "context_length_exceeded",
                    }
                },
                status=400,
            )
        step = self.next_step(body)
        if self.context_window is not None and isinstance(step, Reply):
            step.usage = (size, step.usage[1])
        if isinstance(step, Fail):
            kind = "rate_limit_exceeded" if step.status == 429 else "server_error"
            return _error(step.status, step.message, kind, step.headers)
        self.active += 1
        try:
            if not body.get("stream"):
                return await self._plain(body, step)
            return await self._stream(request, body, step)
        finally:
            self.active -= 1

    async def _plain(self, body: dict[str, Any], step: Reply) -> web.Response:
        await asyncio.sleep(step.first_delay)
        message: dict[str, Any] = {"role": "assistant", "content": step.text}
        if step.tool_calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {"name": name, "arguments": dumps(args)},
                }
                for i, (name, args) in enumerate(step.tool_calls)
            ]
        return web.json_response(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:10]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": _finish(step),
                    }
                ],
                "usage": {
                    "prompt_tokens": step.usage[0],
                    "completion_tokens": step.usage[1],
                    "total_tokens": sum(step.usage),
                },
            }
        )

    async def _stream(
        self, request: web.Request, body: dict[str, Any], step: Reply
    ) -> web.StreamResponse:
        response = await open_event_stream(request)
        if step.hang:
            await hang_until_gone(request)
            return response
        cid = f"chatcmpl-{uuid.uuid4().hex[:10]}"
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": body.get("model"),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {dumps(data)}\n\n".encode()

        await asyncio.sleep(step.first_delay)
        await response.write(chunk({"role": "assistant", "content": ""}))
        pieces = [""] * step.stamps if step.stamps else chunks(step.text, step.chunk_chars)
        record = self.requests[-1]
        if step.burst:
            await response.write(b"".join(chunk({"content": piece}) for piece in pieces))
            pieces = []
        for index, piece in enumerate(pieces):
            if index and step.chunk_delay:
                await asyncio.sleep(step.chunk_delay)
            if step.gate is not None and index == step.gate_after:
                await step.gate.wait()
            if step.stamps:
                piece = f"{time.time() * 1000:.1f} "
            await response.write(chunk({"content": piece}))
            if index == 0 and "arrived" in record:
                record["firstTokenMs"] = (
                    asyncio.get_running_loop().time() - record["arrived"]
                ) * 1000
            if step.cut and index >= len(pieces) // 2:
                return await cut_stream(request, response, step.cut)
        if step.cut:
            return await cut_stream(request, response, step.cut)
        for i, (name, _) in enumerate(step.tool_calls):
            raw = step.arguments(i)
            await response.write(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": i,
                                "id": f"call_{uuid.uuid4().hex[:8]}",
                                "type": "function",
                                "function": {"name": name, "arguments": ""},
                            }
                        ]
                    }
                )
            )
            for part in chunks(raw, 10):
                await response.write(
                    chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
                )
        await response.write(chunk({}, _finish(step)))
        usage = {
            "prompt_tokens": step.usage[0],
            "completion_tokens": step.usage[1],
            "total_tokens": sum(step.usage),
        }
        final = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": body.get("model"),
            "choices": [],
            "usage": usage,
        }
        await response.write(f"data: {dumps(final)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _finish(step: Reply) -> str:
    return step.finish or ("tool_calls" if step.tool_calls else "stop")


def _error(
    status: int, message: str, kind: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": kind, "code": kind}}, status=status, headers=headers
    )


def openai_config(
    base_url: str, *models: str, fallbacks: Sequence[str] = (), **agent_defaults: Any
) -> dict[str, Any]:
    """A config whose provider ``fake`` is the stand-in at ``base_url`` (key ``sk-test``)
    with ``models`` (default ``m1``): the first is the primary model, then ``fallbacks``.
    ``agent_defaults`` go into ``agents.defaults``."""
    models = models or ("m1",)
    return {
        "models": {
            "providers": {
                "fake": {
                    "baseUrl": base_url,
                    "apiKey": "sk-test",
                    "api": "openai-completions",
                    "models": [{"id": m} for m in models],
                }
            }
        },
        "agents": {
            "defaults": {
                "model": {"primary": f"fake/{models[0]}", "fallbacks": list(fallbacks)},
                **agent_defaults,
            }
        },
    }
