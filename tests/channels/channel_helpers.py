"""Helpers shared by channel tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class EchoDispatcher:
    """A tiny stand-in for the agents subsystem (routing/pairing unit tests only)."""

    reply: Callable[[str], str] = lambda text: f"echo: {text}"
    calls: list[dict[str, Any]] = field(default_factory=list)

    async def respond(
        self, agent_id: str, session_key: str, text: str, *, origin: dict[str, Any] | None = None
    ) -> str:
        self.calls.append(
            {"agent_id": agent_id, "session_key": session_key, "text": text, "origin": origin or {}}
        )
        return self.reply(text)

    def resolve_agent(self, agent_id: str | None) -> str:
        return agent_id or "main"
