"""A stand-in Anthropic Messages server (the real SSE wire format)."""

from __future__ import annotations

import asyncio
import uuid
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
)

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class FakeAnthropic(Script):
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self._messages)
        return app

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append({"body": body, "headers": dict(request.headers)})
        # x-api-key, or (newer SDKs) Authorization: Bearer <key>
        presented = request.headers.get("x-api-key") or request.headers.get(
            "Authorization", ""
        ).removeprefix("Bearer ")
        if self.api_key and presented != self.api_key:
            return _error(401, "invalid x-api-key")
        if "anthropic-version" not in request.headers:
            return _error(400, "anthropic-version header is required")
        step = self.next_step(body)
        if isinstance(step, Fail):
            return _error(step.status, step.message, step.headers)
        if not body.get("stream"):
            return _error(400, "this stand-in only streams")
        self.active += 1
        try:
            return await self._stream(request, body, step)
        finally:
            self.active -= 1

    async def _stream(
        self, request: web.Request, body: dict[str, Any], step: Reply
    ) -> web.StreamResponse:
        response = await open_event_stream(request)
        if step.hang:
            await hang_until_gone(request)
            return response

        async def send(event: str, data: dict[str, Any]) -> None:
            await response.write(f"event: {event}\ndata: {dumps(data)}\n\n".encode())

        await asyncio.sleep(step.first_delay)
        await send(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": f"msg_{uuid.uuid4().hex[:10]}",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": body.get("model"),
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": step.usage[0], "output_tokens": 1},
                },
            },
        )
        index = 0
        if step.text or not step.tool_calls:
            await send(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            await send("ping", {"type": "ping"})
            pieces = chunks(step.text, step.chunk_chars)
            for n, piece in enumerate(pieces):
                if n and step.chunk_delay:
                    await asyncio.sleep(step.chunk_delay)
                await send(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
                if step.cut and n >= len(pieces) // 2:
                    return await cut_stream(request, response, step.cut)
            await send("content_block_stop", {"type": "content_block_stop", "index": 0})
            index = 1
        if step.cut:
            return await cut_stream(request, response, step.cut)
        for i, (name, _) in enumerate(step.tool_calls):
            raw = step.arguments(i)
            await send(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {
                        "type": "tool_use",
                        "id": f"toolu_{uuid.uuid4().hex[:8]}",
                        "name": name,
                        "input": {},
                    },
                },
            )
            for part in chunks(raw, 10):
                await send(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": part},
                    },
                )
            await send("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        await send(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": "tool_use" if step.tool_calls else "end_turn",
                    "stop_sequence": None,
                },
                "usage": {"output_tokens": step.usage[1]},
            },
        )
        await send("message_stop", {"type": "message_stop"})
        await response.write_eof()
        return response


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    kind = _ERROR_TYPES.get(status, "api_error")
    return web.json_response(
        {"type": "error", "error": {"type": kind, "message": message}},
        status=status,
        headers=headers,
    )
