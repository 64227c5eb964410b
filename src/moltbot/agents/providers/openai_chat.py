"""``api: "openai-completions"``: any OpenAI-compatible Chat Completions server
(OpenAI, OpenRouter, Ollama ``/v1``, vLLM, LM Studio) through the ``openai`` SDK."""

from __future__ import annotations

import json
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

_FINISH = {
    "stop": "stop",
    "tool_calls": "toolUse",
    "function_call": "toolUse",
    "length": "length",
    "content_filter": "error",
}


_EFFORT = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}


class OpenAIChatProvider(SdkProvider):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._types = _Types()

    def _make_client(self, **options: Any) -> Any:
        from openai import AsyncOpenAI

        return AsyncOpenAI(**options)

    @staticmethod
    def _options(request: ModelRequest) -> Any:
        from openai._types import RequestOptions

        options: dict[str, Any] = {"timeout": request.timeout, "max_retries": request.max_retries}
        if "security" in RequestOptions.__annotations__:
            options["security"] = {"bearer_auth": True}
        return options

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        import openai

        self.check_open()

        body: dict[str, Any] = {
            "model": request.model,
            "messages": to_openai_messages(request),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": dict(t.parameters),
                    },
                }
                for t in request.tools
            ]
        if request.max_tokens:
            body["max_tokens"] = request.max_tokens
        if request.reasoning:
            body["reasoning_effort"] = _EFFORT.get(request.reasoning, "medium")
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        finish: str | None = None
        usage = Usage()
        received = False
        try:
            # The low-level post skips the SDK's per-request transformation of typed
            # params and its per-chunk model construction (together tens of ms per
            # turn); chunks arrive as the plain JSON objects of the wire format.
            stream = await self._client.post(
                "/chat/completions",
                body=body,
                cast_to=self._types.ChatCompletion,
                stream=True,
                stream_cls=self._types.AsyncStream[dict[str, Any]],
                options=self._options(request),
            )
            async with stream:
                async for chunk in stream:
                    received = True
                    try:
                        if chunk.get("usage"):
                            u = chunk["usage"]
                            usage = Usage(
                                input=u.get("prompt_tokens") or 0,
                                output=u.get("completion_tokens") or 0,
                            )
                        for choice in chunk.get("choices") or ():
                            delta = choice.get("delta") or {}
                            content = delta.get("content")
                            if content:
                                text.append(content)
                                yield TextDelta(content)
                            for tc in delta.get("tool_calls") or ():
                                acc = calls.setdefault(
                                    int(tc.get("index", 0)), {"id": "", "name": "", "args": ""}
                                )
                                if tc.get("id"):
                                    acc["id"] = tc["id"]
                                function = tc.get("function") or {}
                                if function.get("name"):
                                    acc["name"] += function["name"]
                                    yield ToolCallStarted(acc["id"], acc["name"])
                                if function.get("arguments"):
                                    acc["args"] += function["arguments"]
                            if choice.get("finish_reason"):
                                finish = choice["finish_reason"]
                    except (TypeError, KeyError, AttributeError, ValueError) as exc:
                        # the provider's data is not what the API promises
                        raise ProviderError("malformed", f"unreadable chunk: {exc!r}") from None
        except ProviderError:
            raise
        except Exception as exc:
            raise stream_error(
                exc, openai, timeout=request.timeout, received=received, closed=self.closed
            ) from None
        if finish is None:
            raise ProviderError("malformed", "stream ended before a finish_reason")
        tool_calls = []
        for index in sorted(calls):
            acc = calls[index]
            arguments, error = parse_arguments(acc["args"])
            tool_calls.append(ToolCall(acc["id"] or f"call_{index}", acc["name"], arguments, error))
        yield Finished(
            AssistantMessage("".join(text), tuple(tool_calls)),
            usage,
            "toolUse" if tool_calls else _FINISH.get(finish, finish),
        )


class _Types:
    """The SDK's stream and response types, imported with the SDK."""

    def __init__(self) -> None:
        from openai import AsyncStream
        from openai.types.chat import ChatCompletion

        self.AsyncStream = AsyncStream
        self.ChatCompletion = ChatCompletion


def to_openai_messages(request: ModelRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if request.system:
        out.append({"role": "system", "content": request.system})
    with_images = image_turns(request.messages, request.images)
    for index, message in enumerate(request.messages):
        if isinstance(message, UserMessage):
            if not message.media:
                out.append({"role": "user", "content": message.text})
                continue
            parts = user_parts(message, index in with_images)
            content: list[dict[str, Any]] = [
                {"type": "text", "text": p.text}
                if p.text is not None
                else {
                    "type": "image_url",
                    "image_url": {"url": f"data:{p.mime_type};base64,{p.data}"},
                }
                for p in parts
            ]
            out.append({"role": "user", "content": content})
        elif isinstance(message, AssistantMessage):
            item: dict[str, Any] = {"role": "assistant", "content": message.text or None}
            if message.tool_calls:
                item["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {
                            "name": call.name,
                            "arguments": json.dumps(dict(call.arguments)),
                        },
                    }
                    for call in message.tool_calls
                ]
            elif not message.text:
                item["content"] = ""
            out.append(item)
        elif isinstance(message, ToolResultMessage):
            out.append(
                {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
            )
    return out
