"""Model providers, chosen by the config's ``api`` name through a lazy table."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from moltbot.agents.providers.base import (
    AssistantMessage,
    Finished,
    Message,
    ModelRequest,
    Provider,
    ProviderError,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallStarted,
    ToolResultMessage,
    ToolSpec,
    Usage,
    UserMessage,
)

APIS: dict[str, str] = {
    "openai-completions": "moltbot.agents.providers.openai_chat:OpenAIChatProvider",
    "anthropic-messages": "moltbot.agents.providers.anthropic_messages:AnthropicProvider",
}


def build(
    api: str,
    provider_id: str,
    base_url: str,
    api_key: str | None,
    headers: Mapping[str, str] | None = None,
) -> Provider:
    """A provider client for ``api``; :class:`ProviderError` ("unconfigured") if unknown."""
    target = APIS.get(api)
    if target is None:
        raise ProviderError(
            "unconfigured",
            f"provider {provider_id}: api {api!r} is not "
            f"supported (use one of: {', '.join(sorted(APIS))})",
        )
    module, name = target.split(":")
    cls = getattr(importlib.import_module(module), name)
    provider: Provider = cls(provider_id, base_url, api_key, headers)
    return provider


__all__ = [
    "APIS",
    "AssistantMessage",
    "Finished",
    "Message",
    "ModelRequest",
    "Provider",
    "ProviderError",
    "StreamEvent",
    "TextDelta",
    "ToolCall",
    "ToolCallStarted",
    "ToolResultMessage",
    "ToolSpec",
    "Usage",
    "UserMessage",
    "build",
]
