"""What every model provider speaks: messages in, a stream of events out.

A provider turns a :class:`ModelRequest` into an async stream of
:class:`TextDelta` / :class:`ToolCallStarted` events ending with exactly one
:class:`Finished`. Every failure is raised as :class:`ProviderError` whose
``kind`` says where it happened: the provider's answer (an HTTP status), its
stream or its network — then ``failover`` tells whether another model may
succeed and ``transient`` whether the same one may on a retry — or our own side
(``internal``: a closed client, a bug), which is never the model's fault.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from moltbot.errors import MoltbotError
from moltbot.sessions.media import StoredMedia

# ---- conversation ---------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: Mapping[str, Any]
    error: str | None = None
    """Set when the model's arguments were not a JSON object (the raw text is kept here)."""


@dataclass(frozen=True)
class UserMessage:
    text: str
    media: tuple[StoredMedia, ...] = ()
    """Attachments: images go to a vision-capable model as image parts, everything
    else (and images for other models) as a one-line description."""


@dataclass(frozen=True)
class AssistantMessage:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class ToolResultMessage:
    tool_call_id: str
    tool_name: str
    text: str
    is_error: bool = False


Message = UserMessage | AssistantMessage | ToolResultMessage


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class ModelRequest:
    model: str
    system: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    max_tokens: int | None = None
    max_retries: int = 0
    timeout: float = 120.0
    images: bool = False
    """The model accepts image input (``input: ["text", "image"]``)."""
    reasoning: str | None = None
    """Reasoning effort (``/think``) for a model declared ``reasoning: true``."""


IMAGE_TURNS = 3
"""Images of this many most recent user messages with images are sent as images;
older ones are described (they cost tokens on every turn)."""


@dataclass(frozen=True)
class UserPart:
    """A piece of a user message as a provider sends it: text, or an image's bytes."""

    text: str | None = None
    mime_type: str | None = None
    data: str | None = None
    """Base64 of the image."""


def user_parts(message: UserMessage, images: bool) -> list[UserPart]:
    """``message`` as text and image parts. An image that cannot be read any more
    (deleted media) is described instead."""
    parts: list[UserPart] = []
    notes: list[str] = []
    for item in message.media:
        if images and item.is_model_image:
            try:
                with open(item.path, "rb") as handle:
                    raw = handle.read()
            except OSError:
                notes.append(item.describe() + " (the file is gone)")
                continue
            parts.append(UserPart(mime_type=item.mime_type, data=base64.b64encode(raw).decode()))
            if item.caption:
                notes.append(f"[image caption] {item.caption}")
        else:
            notes.append(item.describe())
    text = "\n".join(t for t in (message.text, *notes) if t)
    return [UserPart(text=text or "(attachment)"), *parts]


def image_turns(messages: Sequence[Any], images: bool) -> set[int]:
    """Indexes of the user messages whose images are sent as images."""
    if not images:
        return set()
    found = [
        i
        for i, m in enumerate(messages)
        if isinstance(m, UserMessage) and any(x.is_model_image for x in m.media)
    ]
    return set(found[-IMAGE_TURNS:])


# ---- stream events --------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    @property
    def total(self) -> int:
        return self.input + self.output

    def as_dict(self) -> dict[str, int]:
        return {
            "input": self.input,
            "output": self.output,
            "cacheRead": self.cache_read,
            "cacheWrite": self.cache_write,
            "totalTokens": self.total,
        }


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallStarted:
    id: str
    name: str


@dataclass(frozen=True)
class Finished:
    message: AssistantMessage
    usage: Usage = field(default_factory=Usage)
    stop_reason: str = "stop"


StreamEvent = TextDelta | ToolCallStarted | Finished


# ---- errors ---------------------------------------------------------------

ErrorKind = Literal[
    "rate_limit",
    "server",
    "timeout",
    "connection",
    "malformed",
    "auth",
    "billing",
    "not_found",
    "bad_request",
    "unconfigured",
    "context_overflow",
    "internal",
]

FAILOVER_KINDS = frozenset(
    {"rate_limit", "server", "timeout", "connection", "malformed", "auth", "billing", "not_found"}
)
TRANSIENT_KINDS = frozenset({"rate_limit", "server", "timeout", "connection", "malformed"})
"""Failures that a retry of the same model after a pause may not meet again."""


_KEY_LIKE = re.compile(
    r"\b((?:sk|ak|pk|rk|xox[abpr])[-_][A-Za-z0-9_\-*.]{6,}|"
    r"[A-Za-z0-9_\-]{32,})"
)


def scrub(text: str, secret: str | None = None) -> str:
    """``text`` without ``secret`` or anything shaped like an API key (for logs and replies)."""
    if secret:
        text = text.replace(secret, "***")
    return _KEY_LIKE.sub("***", text)


class ProviderError(MoltbotError):
    """A model call failed. ``failover`` says whether the next model should be tried.

    The message never contains an API key (servers sometimes echo a masked one).
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        message = scrub(message)
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retry_after = retry_after

    @property
    def failover(self) -> bool:
        return self.kind in FAILOVER_KINDS

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT_KINDS

    @property
    def internal(self) -> bool:
        """Our side failed (closed client, cancelled request, bug): not the model's fault."""
        return self.kind == "internal"

    def describe(self) -> str:
        status = f" {self.status}" if self.status else ""
        return f"{self.kind}{status}: {self.message}"


def kind_for_status(status: int) -> ErrorKind:
    if status == 429:
        return "rate_limit"
    if status in (401, 403):
        return "auth"
    if status == 402:
        return "billing"
    if status == 404:
        return "not_found"
    if status in (408, 504):
        return "timeout"
    if status >= 500:
        return "server"
    return "bad_request"


_OVERFLOW = re.compile(
    r"context[_ ]length[_ ]exceeded|maximum context length|context window|prompt is too long|"
    r"too many tokens|exceeds? the (?:model's )?(?:maximum )?context|input is too long|"
    r"reduce the length of the messages",
    re.IGNORECASE,
)


def is_context_overflow(status: int | None, message: str) -> bool:
    """Whether a refusal says the request does not fit the model's context window
    (OpenAI's ``context_length_exceeded``, Anthropic's ``prompt is too long``, vLLM,
    Ollama...): the session must be compacted, not the model blamed."""
    return status in (400, 413, 422) and bool(_OVERFLOW.search(message))


class Provider(Protocol):
    """One configured provider (a base URL + key), shared by every run."""

    closed: bool
    """Set by :meth:`close`; a closed client refuses requests (``internal``)."""

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]: ...

    async def close(self) -> None: ...

    async def list_models(self, timeout: float) -> list[str]:
        """The model ids the provider offers (its ``/models``)."""
        ...


def parse_arguments(raw: str) -> tuple[dict[str, Any], str | None]:
    """Tool-call arguments as a dict, or ``({}, error)`` when not a JSON object."""
    import json

    if not raw.strip():
        return {}, None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        return {}, f"arguments are not valid JSON ({exc.msg}): {raw[:200]}"
    if not isinstance(value, dict):
        return {}, f"arguments must be a JSON object, got: {raw[:200]}"
    return value, None
