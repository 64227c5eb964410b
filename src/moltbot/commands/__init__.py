"""Chat commands: ``/status``, ``/new``, ``/model`` ... handled before any model, in
every channel and in WebChat (see :mod:`.registry` for declaring one)."""

from __future__ import annotations

from moltbot.commands.context import (
    AgentControl,
    CommandContext,
    CompactOutcome,
    Reply,
    SessionInfo,
)
from moltbot.commands.registry import (
    REGISTRY,
    Command,
    CommandRegistry,
    CommandReply,
    Invocation,
    command,
    execute,
    handle,
)

__all__ = [
    "REGISTRY",
    "AgentControl",
    "Command",
    "CommandContext",
    "CommandRegistry",
    "CommandReply",
    "CompactOutcome",
    "Invocation",
    "Reply",
    "SessionInfo",
    "command",
    "execute",
    "handle",
]
