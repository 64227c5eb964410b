"""``api: "openai-completions"``: any OpenAI-compatible Chat Completions server
(OpenAI, OpenRouter, Ollama ``/v1``, vLLM, LM Studio) through the ``openai`` SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

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
    kind_for_status,
    parse_arguments,
)

_FINISH = {"stop": "stop", "tool_calls": "toolUse", "function_call": "toolUse",
           "length": "length", "content_filter": "error"}


class OpenAIChatProvider:
    def __init__(self, provider_id: str, base_url: str, api_key: str | None,
                 headers: Mapping[str, str] | None = None) -> None:
        from openai import AsyncOpenAI

        self.provider_id = provider_id
        # Local servers (Ollama, vLLM) take any key; the SDK insists on one.
        self._client = AsyncOpenAI(api_key=api_key or "not-needed", base_url=base_url,
                                   default_headers=dict(headers or {}), max_retries=0)

    async def close(self) -> None:
        await self._client.close()

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        import openai

        body: dict[str, Any] = {
            "model": request.model,
            "messages": to_openai_messages(request),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            body["tools"] = [{"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": dict(t.parameters)}}
                for t in request.tools]
        if request.max_tokens:
            body["max_tokens"] = request.max_tokens
        client = self._client.with_options(max_retries=request.max_retries,
                                           timeout=request.timeout)
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        finish: str | None = None
        usage = Usage()
        received = False
        try:
            stream = await client.chat.completions.create(**body)
            async with stream:
                async for chunk in stream:
                    received = True
                    if chunk.usage is not None:
                        usage = Usage(input=chunk.usage.prompt_tokens or 0,
                                      output=chunk.usage.completion_tokens or 0)
                    for choice in chunk.choices or ():
                        delta = choice.delta
                        if delta is not None and delta.content:
                            text.append(delta.content)
                            yield TextDelta(delta.content)
                        for tc in (delta.tool_calls if delta is not None else None) or ():
                            acc = calls.setdefault(tc.index, {"id": "", "name": "", "args": ""})
                            if tc.id:
                                acc["id"] = tc.id
                            if tc.function is not None:
                                if tc.function.name:
                                    acc["name"] += tc.function.name
                                    yield ToolCallStarted(acc["id"], acc["name"])
                                if tc.function.arguments:
                                    acc["args"] += tc.function.arguments
                        if choice.finish_reason:
                            finish = choice.finish_reason
        except ProviderError:
            raise
        except openai.APIStatusError as exc:
            raise ProviderError(kind_for_status(exc.status_code), _message(exc),
                                status=exc.status_code,
                                retry_after=_retry_after(exc.response.headers)) from None
        except openai.APITimeoutError:
            raise ProviderError("timeout", f"no answer within {request.timeout:g}s") from None
        except openai.APIConnectionError as exc:
            kind = "malformed" if received else "connection"  # a stream cut mid-way
            raise ProviderError(kind, _cause(exc)) from None
        except openai.APIError as exc:  # an error event inside the stream
            raise ProviderError("server", _message(exc)) from None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise ProviderError("malformed", f"unreadable stream: {exc}") from None
        except Exception as exc:  # transport errors raised while iterating the body
            if _is_timeout(exc):
                raise ProviderError("timeout", f"no data for {request.timeout:g}s") from None
            raise ProviderError("malformed", f"stream broke: {_cause(exc)}") from None
        if finish is None:
            raise ProviderError("malformed", "stream ended before a finish_reason")
        tool_calls = []
        for index in sorted(calls):
            acc = calls[index]
            arguments, error = parse_arguments(acc["args"])
            tool_calls.append(ToolCall(acc["id"] or f"call_{index}", acc["name"], arguments, error))
        yield Finished(AssistantMessage("".join(text), tuple(tool_calls)), usage,
                       "toolUse" if tool_calls else _FINISH.get(finish, finish))


def to_openai_messages(request: ModelRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if request.system:
        out.append({"role": "system", "content": request.system})
    for message in request.messages:
        if isinstance(message, UserMessage):
            out.append({"role": "user", "content": message.text})
        elif isinstance(message, AssistantMessage):
            item: dict[str, Any] = {"role": "assistant", "content": message.text or None}
            if message.tool_calls:
                item["tool_calls"] = [{
                    "id": call.id, "type": "function",
                    "function": {"name": call.name,
                                 "arguments": json.dumps(dict(call.arguments))}}
                    for call in message.tool_calls]
            elif not message.text:
                item["content"] = ""
            out.append(item)
        elif isinstance(message, ToolResultMessage):
            out.append({"role": "tool", "tool_call_id": message.tool_call_id,
                        "content": message.text})
    return out


def _message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
    return str(getattr(exc, "message", None) or exc)[:500]


def _cause(exc: BaseException) -> str:
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    text = str(seen) or type(seen).__name__
    return text if seen is exc else f"{exc}: {text}"


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("retry-after")
        return float(value) if value else None
    except (TypeError, ValueError):
        return None


def _is_timeout(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TimeoutError) or "Timeout" in type(seen).__name__:
            return True
        seen = seen.__cause__ or seen.__context__
    return False
