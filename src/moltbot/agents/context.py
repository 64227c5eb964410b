"""Between transcript entries (JSON on disk) and provider messages (dataclasses)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from moltbot.agents.providers.base import (
    AssistantMessage,
    Message,
    ToolCall,
    ToolResultMessage,
    Usage,
    UserMessage,
)
from moltbot.sessions.media import StoredMedia

# Assistant entries that are not model output and never go back to a model.
NOT_CONTEXT_STOP_REASONS = frozenset({"error", "notice", "command"})
INTERRUPTED = "Tool call was interrupted before it finished (no result recorded)."


def now_ms() -> int:
    return int(time.time() * 1000)


def text_of(content: Any) -> str:
    """Plain text of a message ``content`` (a string or a list of blocks)."""
    if type(content) is str:
        return content
    if type(content) is list:
        if len(content) == 1:
            block = content[0]
            return (
                block.get("text", "") if type(block) is dict and block.get("type") == "text" else ""
            )
        return "".join(
            block.get("text", "")
            for block in content
            if type(block) is dict and block.get("type") == "text"
        )
    return ""


# ---- to disk ---------------------------------------------------------------


def user_entry(
    text: str, run_id: str | None, media: Iterable[StoredMedia] = (), **extra: Any
) -> dict[str, Any]:
    """A user message; with ``media`` its content is a list of blocks: the text, then
    one block per attachment (its stored path and type, never its bytes)."""
    blocks = [item.block() for item in media]
    content: Any = [{"type": "text", "text": text}, *blocks] if blocks else text
    message = {"role": "user", "content": content, "timestamp": now_ms(), **extra}
    return {"type": "message", "runId": run_id, "message": message}


def media_of(content: Any) -> tuple[StoredMedia, ...]:
    """The attachments recorded in a user message's ``content``."""
    if type(content) is not list:
        return ()
    found = (StoredMedia.from_block(b) for b in content if type(b) is dict)
    return tuple(item for item in found if item is not None)


def assistant_entry(
    message: AssistantMessage,
    run_id: str | None,
    *,
    api: str | None,
    provider: str | None,
    model: str | None,
    usage: Usage | None,
    stop_reason: str,
    usage_record: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """``usage_record`` (usage with its cost) is stored instead of ``usage`` when given."""
    content: list[dict[str, Any]] = []
    if message.text:
        content.append({"type": "text", "text": message.text})
    for call in message.tool_calls:
        content.append(
            {
                "type": "toolCall",
                "id": call.id,
                "name": call.name,
                "arguments": dict(call.arguments),
            }
        )
    body: dict[str, Any] = {
        "role": "assistant",
        "content": content,
        "api": api,
        "provider": provider,
        "model": model,
        "usage": usage_record or (usage or Usage()).as_dict(),
        "stopReason": stop_reason,
        "timestamp": now_ms(),
        **extra,
    }
    return {"type": "message", "runId": run_id, "message": body}


def note_entry(
    text: str, run_id: str | None, *, model: str, stop_reason: str, **extra: Any
) -> dict[str, Any]:
    """An assistant entry written by moltbot, not by a model (a notice, an error, a note)."""
    return assistant_entry(
        AssistantMessage(text),
        run_id,
        api=None,
        provider="moltbot",
        model=model,
        usage=None,
        stop_reason=stop_reason,
        **extra,
    )


def tool_result_entry(result: ToolResultMessage, run_id: str | None) -> dict[str, Any]:
    body = {
        "role": "toolResult",
        "toolCallId": result.tool_call_id,
        "toolName": result.tool_name,
        "content": [{"type": "text", "text": result.text}],
        "isError": result.is_error,
        "timestamp": now_ms(),
    }
    return {"type": "message", "runId": run_id, "message": body}


# ---- from disk -------------------------------------------------------------


def to_messages(entries: Iterable[Mapping[str, Any]]) -> list[Message]:
    """Provider messages from ordered transcript entries.

    Error/notice replies are left out; a tool call without a recorded result (a
    crash or abort in the middle of a tool) gets a synthetic error result, so the
    next request is well-formed.
    """
    out: list[Message] = []
    pending: dict[str, str] = {}

    def close_pending() -> None:
        for call_id, name in pending.items():
            out.append(ToolResultMessage(call_id, name, INTERRUPTED, True))
        pending.clear()

    for entry in entries:
        message = entry.get("message")
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "toolResult":
            call_id = str(message.get("toolCallId", ""))
            if call_id in pending:
                pending.pop(call_id)
                out.append(
                    ToolResultMessage(
                        call_id,
                        str(message.get("toolName", "")),
                        text_of(message.get("content")),
                        bool(message.get("isError")),
                    )
                )
            continue
        close_pending()
        if role == "user":
            if message.get("command"):  # a chat command (/status): not conversation
                continue
            content = message.get("content")
            text = text_of(content)
            media = media_of(content)
            if text or media:
                out.append(UserMessage(text, media))
        elif role == "assistant":
            if message.get("stopReason") in NOT_CONTEXT_STOP_REASONS:
                continue
            content = message.get("content")
            text = text_of(content)
            calls = []
            if isinstance(content, list):
                for block in content:
                    if isinstance(block, dict) and block.get("type") == "toolCall":
                        args = block.get("arguments")
                        calls.append(
                            ToolCall(
                                str(block.get("id")),
                                str(block.get("name")),
                                args if isinstance(args, dict) else {},
                            )
                        )
            if not text and not calls:
                continue
            out.append(AssistantMessage(text, tuple(calls)))
            pending.update((c.id, c.name) for c in calls)
    close_pending()
    return out


def fit(messages: list[Message], max_chars: int) -> list[Message]:
    """The most recent messages within ``max_chars``, starting at a user message."""
    total = 0
    start = len(messages)
    for index in range(len(messages) - 1, -1, -1):
        total += _size(messages[index])
        if total > max_chars and start < len(messages):
            break
        start = index
    while start < len(messages) and not isinstance(messages[start], UserMessage):
        start += 1
    return messages[start:] if start < len(messages) else messages[-1:]


def _size(message: Message) -> int:
    if isinstance(message, AssistantMessage):
        return len(message.text) + sum(len(str(c.arguments)) + 20 for c in message.tool_calls)
    return len(message.text)


def history_item(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """A transcript entry as a ``chat.history`` message (the stored message plus ids)."""
    message = entry.get("message")
    if not isinstance(message, dict):
        return None
    item = dict(message)
    item.setdefault("id", entry.get("id"))
    if entry.get("runId"):
        item.setdefault("runId", entry.get("runId"))
    return item
