"""A Chat Completions request: its body, the prompt it becomes, and its session.

Sampling fields (``temperature``, ``max_tokens``, ...), ``tools`` and
``response_format`` are accepted and ignored: the agent's own config and tools
decide. ``n`` other than 1 is refused.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from moltbot.gateway.http.api import ApiError
from moltbot.validation import BaseModel, ConfigDict, ValidationError

SESSION_KEY_HEADERS = ("x-moltbot-session-key", "x-openclaw-session-key")
SESSION_NAME_HEADER = "x-moltbot-session"
AGENT_HEADERS = ("x-moltbot-agent-id", "x-openclaw-agent-id", "x-openclaw-agent")
_PLAIN_NAME = re.compile(r"[a-z0-9][a-z0-9._@+=-]{0,127}")


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")


class ContentPart(_Body):
    type: str
    text: str | None = None


class ChatMessage(_Body):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if self.content is None:
            return ""
        return "".join(
            p.text or "" for p in self.content if p.type in ("text", "input_text", "output_text")
        )


class StreamOptions(_Body):
    include_usage: bool = False


class ChatRequest(_Body):
    model: str | None = None
    messages: list[ChatMessage]
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    n: int | None = None

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


def parse_request(body: Any, max_messages: int) -> ChatRequest:
    """The validated body; a 400 :class:`ApiError` naming the bad field otherwise."""
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    messages = body.get("messages")
    if isinstance(messages, list) and len(messages) > max_messages:
        raise ApiError(
            400,
            f"Too many messages: {len(messages)}, the limit is {max_messages} "
            "(gateway.http.endpoints.chatCompletions.maxMessages).",
            param="messages",
            code="too_many_messages",
        )
    try:
        request = ChatRequest.model_validate(body)
    except ValidationError as exc:
        first = max(exc.errors(), key=lambda e: len(e["loc"]))  # the deepest: inside unions
        param = _param(first["loc"])
        raise ApiError(
            400, f"Invalid `{param}`: {first['msg']}.", param=param, code="invalid_value"
        ) from None
    if request.n not in (None, 1):
        raise ApiError(400, "Only `n: 1` is supported.", param="n", code="invalid_value")
    return request


_UNION_TAGS = frozenset({"str", "list[ContentPart]"})
"""The union member names validation puts in an error's location for ``content``: not fields."""


def _param(loc: Sequence[int | str]) -> str:
    """``("messages", 2, "content", "str")`` → ``messages[2].content``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part not in _UNION_TAGS:
            out += f".{part}" if out else part
    return out or "body"


@dataclass(frozen=True)
class Prompt:
    text: str
    """The last user (or tool) message, earlier turns folded in as context."""
    system: str | None
    """``system`` and ``developer`` messages, joined: added to the agent's system prompt."""


def build_prompt(messages: Sequence[ChatMessage], *, history: bool = True) -> Prompt:
    """See :class:`Prompt`; a 400 :class:`ApiError` when there is no user message.

    ``history=False`` leaves the earlier turns out (the session already holds them).
    """
    system = [m.text() for m in messages if m.role in ("system", "developer")]
    turns = [m for m in messages if m.role in ("user", "assistant", "tool", "function")]
    last = max((i for i, m in enumerate(turns) if m.role != "assistant"), default=None)
    current = turns[last].text() if last is not None else ""
    if last is None or not current.strip():
        raise ApiError(
            400, "Missing user message in `messages`.", param="messages", code="missing_user"
        )
    earlier = [
        f"{m.role.capitalize()}: {m.text()}" for m in turns[:last] if history and m.text().strip()
    ]
    text = current
    if earlier:
        text = (
            "[Chat history for context]\n"
            + "\n".join(earlier)
            + "\n\n[Current message - respond to this]\n"
            + current
        )
    return Prompt(text, "\n\n".join(s for s in system if s.strip()) or None)


def requested_agent(headers: Mapping[str, str]) -> str | None:
    """The agent id named by a header (``x-moltbot-agent-id``), if any."""
    for name in AGENT_HEADERS:
        value = headers.get(name, "").strip()
        if value:
            return value.lower()
    return None


@dataclass(frozen=True)
class Session:
    key: str
    stable: bool
    """False for the fresh key of a stateless request."""


def session_for(
    agent_id: str, headers: Mapping[str, str], user: str | None, prefix: str = "openai"
) -> Session:
    """Where the conversation lives, in order of precedence (``prefix`` is ``openai``
    for Chat Completions, ``openresponses`` for the Responses API):

    - ``x-moltbot-session-key`` (or ``x-openclaw-session-key``): that key as is;
    - ``X-Moltbot-Session: <name>``: ``agent:<id>:<prefix>-session:<name>``;
    - ``user``: ``agent:<id>:<prefix>-user:<user>``;
    - else a fresh ``agent:<id>:<prefix>:<uuid>`` (stateless).

    A name or user made of ``a-z 0-9 . _ @ + = -`` (at most 128) appears as is;
    any other value (upper case, spaces, longer) as ``~`` + a hash of its exact
    text, so two different values never share a session.
    """
    for name in SESSION_KEY_HEADERS:
        if headers.get(name, "").strip():
            return Session(headers[name].strip(), True)
    named = headers.get(SESSION_NAME_HEADER, "").strip()
    if named:
        return Session(f"agent:{agent_id}:{prefix}-session:{_stable_name(named)}", True)
    if user is not None and user.strip():
        return Session(f"agent:{agent_id}:{prefix}-user:{_stable_name(user.strip())}", True)
    return Session(f"agent:{agent_id}:{prefix}:{uuid.uuid4()}", False)


def _stable_name(value: str) -> str:
    if _PLAIN_NAME.fullmatch(value):
        return value
    return "~" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
