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

_FINISH = {
    "stop": "stop",
    "tool_calls": "toolUse",
    "function_call": "toolUse",
    "length": "length",
    "content_filter": "error",
}


class OpenAIChatProvider:
    def __init__(
        self,
        provider_id: str,
        base_url: str,
        api_key: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        from openai import AsyncOpenAI

        self.provider_id = provider_id
        # Local servers (Ollama, vLLM) take any key; the SDK insists on one.
        self._client = AsyncOpenAI(
            api_key=api_key or "not-needed",
            base_url=base_url,
            default_headers=dict(headers or {}),
            max_retries=0,
        )
        self._types = _Types()

    async def close(self) -> None:
        await self._client.close()

    @staticmethod
    def _options(request: ModelRequest) -> Any:
        from openai._types import RequestOptions

        options: dict[str, Any] = {"timeout": request.timeout, "max_retries": request.max_retries}
        if "security" in RequestOptions.__annotations__:
            options["security"] = {"bearer_auth": True}
        return options

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        import openai

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
        except ProviderError:
            raise
        except openai.APIStatusError as exc:
            raise ProviderError(
                kind_for_status(exc.status_code),
                _message(exc),
                status=exc.status_code,
                retry_after=_retry_after(exc.response.headers),
            ) from None
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
    for message in request.messages:
        if isinstance(message, UserMessage):
            out.append({"role": "user", "content": message.text})
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
