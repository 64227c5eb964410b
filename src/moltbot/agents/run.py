"""One agent run: its state, its events and its result."""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moltbot.errors import INVALID_REQUEST, MoltbotError
from moltbot.sessions.origin import Origin

RESTARTING = "gateway restarting"
STOPPING = "gateway stopping"
GATEWAY_REASONS = frozenset({RESTARTING, STOPPING})
"""Abort reasons of the gateway itself (not of a user): such a run is *interrupted*."""


class AgentRunError(MoltbotError):
    """A run could not be started or recorded (the runtime is not running, the
    transcript cannot be written): ``UNAVAILABLE``."""


class UnknownAgent(AgentRunError):
    """No agent has that id: ``INVALID_REQUEST`` (the run was not started)."""

    protocol_code = INVALID_REQUEST


class RunState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    OK = "ok"
    ERROR = "error"
    ABORTED = "aborted"
    TIMEOUT = "timeout"

    @property
    def finished(self) -> bool:
        return self not in (RunState.QUEUED, RunState.RUNNING)


Watcher = Callable[[str, dict[str, Any]], None]
"""``watcher(event, payload)`` for ``agent`` and ``chat`` events of one run."""


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(eq=False)
class Run:
    id: str
    agent_id: str
    session_key: str
    message: str
    timeout: float
    channel: str = "webchat"
    origin: Origin | None = None
    extra_system: str | None = None
    state: RunState = RunState.QUEUED
    accepted_at: int = field(default_factory=now_ms)
    started_at: int | None = None
    ended_at: int | None = None
    error: str | None = None
    error_code: str | None = None
    error_kind: str | None = None
    """Why the model failed (a :class:`~moltbot.agents.providers.ProviderError` kind:
    ``rate_limit``, ``server``, ``bad_request``, ...); None for other failures."""
    text: str = ""
    """The reply so far: every assistant text segment of the run, joined by blank lines."""
    stop_reason: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    context_tokens: int = 0
    """What the session's context took at the last model call (its input + output)."""
    thinking: str | None = None
    notes: list[str] = field(default_factory=list)
    """Housekeeping worth telling a verbose session (``🧹 Auto-compaction complete``)."""
    skill_env: dict[str, str] = field(default_factory=dict)
    """Variables configured for the eligible skills (given to ``exec``)."""
    tool_log: list[str] = field(default_factory=list)
    """One line per tool call (``🔧 read``), for verbose sessions."""
    abort_reason: str | None = None
    watchers: list[Watcher] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    ready: asyncio.Future[bool] | None = None
    done: asyncio.Future[Run] | None = None
    seq: int = 0
    chat_seq: int = 0
    # delta throttling and bookkeeping
    last_chat_at: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)
    """perf_counter() at: accepted, started, requested (first model request), first (delta)."""
    flush_handle: asyncio.TimerHandle | None = None
    unsent: str = ""
    """Model output added since the last ``assistant`` event (see ``RunEvents.text``)."""
    text_handle: asyncio.Handle | None = None
    next_text_at: float = 0.0
    """Loop time before which no ``assistant`` event is sent (after a costly one, see
    ``RunEvents.flush_text``)."""
    new_segment: bool = False
    pending_calls: dict[str, str] = field(default_factory=dict)
    partial: str = ""
    """Text of the model call in progress (persisted if the run is cut short)."""

    def usage(self) -> dict[str, int]:
        return {
            "input": self.input_tokens,
            "output": self.output_tokens,
            "totalTokens": self.input_tokens + self.output_tokens,
        }

    def add_text(self, delta: str) -> str:
        """Append model output to the reply; after a tool step it starts a new paragraph.
        Returns what was appended (``delta``, after a blank line when a paragraph starts)."""
        added = delta
        if self.new_segment:
            added = "\n\n" + delta
            self.new_segment = False
        self.text += added
        self.partial += delta
        self.mark("first")
        return added

    def settle(self) -> None:
        """Resolve :attr:`done` with this run (once)."""
        if self.done is not None and not self.done.done():
            self.done.set_result(self)

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.perf_counter())

    def timings(self) -> dict[str, float]:
        """Milliseconds from acceptance to each mark (``startedMs``, ``requestedMs``, ...)."""
        base = self.marks.get("accepted")
        if base is None:
            return {}
        return {
            f"{name}Ms": round((value - base) * 1000, 2)
            for name, value in self.marks.items()
            if name != "accepted"
        }

    @property
    def interrupted(self) -> bool:
        """Aborted by the gateway stopping or restarting, not by anyone's choice."""
        return self.state == RunState.ABORTED and self.abort_reason in GATEWAY_REASONS

    def abort_message(self) -> str | None:
        """``"aborted: gateway restarting"`` for an interrupted run, else None."""
        return f"aborted: {self.abort_reason}" if self.interrupted else None

    def summary(self) -> dict[str, Any]:
        """The ``agent.wait`` payload."""
        out: dict[str, Any] = {"runId": self.id, "status": str(self.state)}
        if self.started_at:
            out["startedAt"] = self.started_at
        if self.ended_at:
            out["endedAt"] = self.ended_at
        if self.error:
            out["error"] = self.error
        elif self.interrupted:
            out["error"] = self.abort_message()
        return out

    def reply_text(self, verbose: str | None = None) -> str:
        """What a channel should send back: the reply, or an explanation when it failed.
        A ``verbose`` session also gets the tool calls and housekeeping notes first."""
        if self.state == RunState.OK:
            if verbose and verbose != "off" and (self.tool_log or self.notes):
                lines = [*self.notes, *self.tool_log]
                return "\n".join(lines) + ("\n\n" + self.text if self.text else "")
            return self.text
        if self.state == RunState.ABORTED:
            return f"⚠️ {self.abort_message()}; send your message again" if self.interrupted else ""
        return self.text or f"⚠️ {self.error or 'the run failed'}"
