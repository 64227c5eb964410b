"""``api: "anthropic-messages"``: the Anthropic Messages API (and compatible hosts)
through the ``anthropic`` SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from moltbot.agents.providers._sdk import SdkProvider, stream_error
from moltbot.agents.providers.base import (
    AssistantMessage,
    Finished,
    ModelRequest,
    ProviderError,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallStarted,
    ToolResultMessage,
    Usage,
    UserMessage,
    image_turns,
    parse_arguments,
    user_parts,
)

DEFAULT_MAX_TOKENS = 8192
_STOP = {
    "end_turn": "stop",
    "tool_use": "toolUse",
    "max_tokens": "length",
    "stop_sequence": "stop",
    "refusal": "error",
    "pause_turn": "stop",
}


class AnthropicProvider(SdkProvider):
    def _make_client(self, **options: Any) -> Any:
        from anthropic import AsyncAnthropic

        return AsyncAnthropic(**options)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        import anthropic

        self.check_open()

        body: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": to_anthropic_messages(request),
            "stream": True,
        }
        if request.system:
            body["system"] = request.system
        if request.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
                for t in request.tools
            ]
        text: list[str] = []
        blocks: dict[int, dict[str, str]] = {}
        usage_in = usage_out = cache_read = cache_write = 0
        stop_reason: str | None = None
        stopped = False
        received = False
        try:
            # Events as plain JSON objects: no per-event model construction.
            from anthropic import AsyncStream
            from anthropic.types import Message

            stream = await self._client.post(
                "/v1/messages",
                body=body,
                cast_to=Message,
                stream=True,
                stream_cls=AsyncStream[dict[str, Any]],
                options={"timeout": request.timeout, "max_retries": request.max_retries},
            )
            async with stream:
                async for event in stream:
                    received = True
                    try:
                        kind = event.get("type")
                        if kind == "message_start":
                            u = (event.get("message") or {}).get("usage") or {}
                            usage_in = u.get("input_tokens") or 0
                            usage_out = u.get("output_tokens") or 0
                            cache_read = u.get("cache_read_input_tokens") or 0
                            cache_write = u.get("cache_creation_input_tokens") or 0
                        elif kind == "content_block_start":
                            block = event.get("content_block") or {}
                            if block.get("type") == "tool_use":
                                blocks[int(event.get("index", 0))] = {
                                    "id": block.get("id", ""),
                                    "name": block.get("name", ""),
                                    "args": "",
                                }
                                yield ToolCallStarted(block.get("id", ""), block.get("name", ""))
                        elif kind == "content_block_delta":
                            delta = event.get("delta") or {}
                            index = int(event.get("index", 0))
                            if delta.get("type") == "text_delta" and delta.get("text"):
                                text.append(delta["text"])
                                yield TextDelta(delta["text"])
                            elif delta.get("type") == "input_json_delta" and index in blocks:
                                blocks[index]["args"] += delta.get("partial_json", "")
                        elif kind == "message_delta":
                            stop_reason = (event.get("delta") or {}).get(
                                "stop_reason"
                            ) or stop_reason
                            out = (event.get("usage") or {}).get("output_tokens")
                            if out is not None:
                                usage_out = out
                        elif kind == "message_stop":
                            stopped = True
                        elif kind == "error":
                            error = event.get("error") or {}
                            raise ProviderError("server", str(error.get("message") or error))
                    except (TypeError, KeyError, AttributeError, ValueError) as exc:
                        # the provider's data is not what the API promises
                        raise ProviderError("malformed", f"unreadable event: {exc!r}") from None
        except ProviderError:
            raise
        except Exception as exc:
            raise stream_error(
                exc, anthropic, timeout=request.timeout, received=received, closed=self.closed
            ) from None
        if not stopped:
            raise ProviderError("malformed", "stream ended before message_stop")
        calls = []
        for index in sorted(blocks):
            block = blocks[index]
            arguments, error = parse_arguments(block["args"])
            calls.append(ToolCall(block["id"], block["name"], arguments, error))
        usage = Usage(usage_in, usage_out, cache_read, cache_write)
        yield Finished(
            AssistantMessage("".join(text), tuple(calls)),
            usage,
            "toolUse" if calls else _STOP.get(stop_reason or "", stop_reason or "stop"),
        )


def to_anthropic_messages(request: ModelRequest) -> list[dict[str, Any]]:
    """Messages with strictly alternating roles, as the API requires."""
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    with_images = image_turns(request.messages, request.images)
    for index, message in enumerate(request.messages):
        if isinstance(message, UserMessage):
            if not message.media:
                add("user", [{"type": "text", "text": message.text or "(empty)"}])
                continue
            add(
                "user",
                [
                    {"type": "text", "text": p.text}
                    if p.text is not None
                    else {
                        "type": "image",
                        "source": {"type": "base64", "media_type": p.mime_type, "data": p.data},
                    }
                    for p in user_parts(message, index in with_images)
                ],
            )
        elif isinstance(message, AssistantMessage):
            blocks: list[dict[str, Any]] = []
            if message.text:
                blocks.append({"type": "text", "text": message.text})
            blocks.extend(
                {"type": "tool_use", "id": c.id, "name": c.name, "input": dict(c.arguments)}
                for c in message.tool_calls
            )
            add("assistant", blocks)
        elif isinstance(message, ToolResultMessage):
            add(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": message.tool_call_id,
                        "content": message.text or "(no output)",
                        "is_error": message.is_error,
                    }
                ],
            )
    if out and out[0]["role"] != "user":
        out.insert(0, {"role": "user", "content": [{"type": "text", "text": "(continue)"}]})
    return out
