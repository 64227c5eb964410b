"""What a chat command sees: who asked, where, and the agent operations it may use.

A command handler gets a :class:`CommandContext` and answers with plain text (or a
:class:`CommandReply`). The context is built by the surface the command arrived on
— a channel's inbound pipeline or the gateway's ``chat.send`` — and is the same for
all of them, so a command never needs to know where it runs.

:class:`AgentControl` is the narrow set of agent-runtime operations the built-in
commands use; the agent runtime implements it. It may be ``None`` (the agents are
not running — a rescue command must still work then).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from moltbot.lifecycle import Lookup, no_subsystems

if TYPE_CHECKING:
    from moltbot.commands.registry import CommandRegistry
    from moltbot.config.schema import Config
    from moltbot.instance.resolve import Instance
    from moltbot.sessions.origin import Origin

Reply = Callable[[str], Awaitable[None]]
"""Send one extra plain-text message to the conversation now (progress, a warning)."""


@dataclass(frozen=True)
class SessionInfo:
    """What ``/status`` shows of one session."""

    agent_id: str
    session_key: str
    session_id: str | None
    model: str | None
    """The model the next turn uses first (``provider/model``), or None when none is set up."""
    model_override: str | None
    fallbacks: tuple[str, ...]
    context_window: int | None
    context_tokens: int | None
    """Estimated tokens the session's context takes now (what the next request sends)."""
    input_tokens: int
    output_tokens: int
    compactions: int
    running: bool
    queued: int
    thinking: str | None
    verbose: str | None
    updated_at: int | None


@dataclass(frozen=True)
class CompactOutcome:
    """What a compaction did (``/compact``, ``sessions.compact``)."""

    compacted: bool
    reason: str | None = None
    """Why nothing was compacted (``too short``, ``no session``, ...)."""
    tokens_before: int | None = None
    tokens_after: int | None = None
    summary_chars: int = 0
    entry_id: str | None = None


@runtime_checkable
class AgentControl(Protocol):
    """The agent-runtime operations chat commands use (implemented by
    :class:`moltbot.agents.runtime.AgentRuntime`)."""

    async def abort(
        self, session_key: str, run_id: str | None = None, *, reason: str = "aborted"
    ) -> list[str]:
        """Abort the session's runs; the ids of those aborted."""
        ...

    async def reset_session(self, session_key: str, note: str | None = None) -> str:
        """Abort the session's runs and start a fresh transcript; the new session id.
        ``note`` is written into the new transcript (not model context)."""
        ...

    async def session_info(self, session_key: str) -> SessionInfo: ...

    async def update_session(self, session_key: str, **fields: Any) -> None:
        """Set session fields (``model_override``, ``thinking_level``, ``verbose_level``;
        None clears one)."""
        ...

    def model_choices(self, agent_id: str) -> list[str]:
        """Models the agent may switch to (``provider/model``), the chain's first."""
        ...

    def parse_model(self, text: str) -> str:
        """``provider/model`` for a reference, alias or unique model id; raises
        :class:`~moltbot.errors.ConfigError` for anything else."""
        ...

    async def compact(
        self,
        session_key: str,
        *,
        instructions: str | None = None,
        reason: str = "manual",
        keep_recent: int | None = None,
    ) -> CompactOutcome:
        """Summarise the session's older turns (keeping ``keep_recent`` tokens verbatim,
        default ``keepRecentTokens``)."""
        ...

    def skill_commands(self, agent_id: str | None = None) -> list[tuple[str, str]]:
        """``(command, description)`` of the agent's skills that ``/<command>`` runs."""
        ...

    def skill_request(self, agent_id: str, text: str) -> str | None:
        """The agent's prompt for ``/<skill> [input]`` or ``/skill <name> [input]``, or
        None when ``text`` names no skill of the agent."""
        ...

    async def record_command(
        self,
        session_key: str,
        text: str,
        reply: str | None,
        *,
        run_id: str | None = None,
        transcript: bool = True,
    ) -> None:
        """Keep a command exchange in the session's transcript (never model context)
        when ``transcript``, and show the reply to the session's live viewers."""
        ...


@dataclass(frozen=True)
class CommandContext:
    """One command invocation."""

    name: str
    """The command's registered name (an alias resolves to it)."""
    args: str
    """The text after the command name, stripped (``/think high`` → ``high``)."""
    text: str
    """The whole message as sent."""
    surface: str
    """Where it came from: ``webchat`` or a channel id (``telegram``, ``slack``, ...)."""
    sender: str
    """``<surface>:<sender id>`` (``telegram:4242``; ``webchat:<client>``)."""
    agent_id: str
    session_key: str
    is_owner: bool
    """The sender may change state (an owner: an operator, or an allowlisted channel sender)."""
    reply: Reply
    registry: CommandRegistry
    chat_type: str = "direct"
    sender_name: str | None = None
    origin: Origin | None = None
    agents: AgentControl | None = None
    config: Config | None = None
    instance: Instance | None = None
    conversation: str = ""
    """One sender in one conversation (``telegram:<account>:<chat>:<sender>``;
    ``webchat:<session key>``): what :meth:`CommandRegistry.expect` keys an awaited
    answer by."""
    sender_keys: frozenset[str] = frozenset()
    """The sender as a channel's allowlist entries would name it (id, ``@username``),
    normalized; empty in WebChat. For commands with an allowlist of their own."""
    normalize: Callable[[str], str] = str.lower
    """The channel's normalization of allowlist entries (compare with ``sender_keys``)."""
    scopes: frozenset[str] = frozenset()
    """The operator's protocol scopes (WebChat); empty for a channel sender."""
    lookup: Lookup = no_subsystems
    """The gateway's running subsystems (``ctx.lookup(RESCUE)``), or none."""
    answer: bool = False
    """The message is the sender's plain answer (``yes``, a code) to a question this
    command asked (see :meth:`CommandRegistry.expect`), not ``/name ...``; ``args`` is
    the answer."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Surface-specific facts a plugin command may use (never required)."""

    @property
    def words(self) -> list[str]:
        return self.args.split()

    def need_agents(self) -> AgentControl:
        """The agent runtime, or :class:`~moltbot.errors.RetryLaterError` when it is down."""
        from moltbot.errors import RetryLaterError

        if self.agents is None:
            raise RetryLaterError("the assistant is not running right now; try again shortly")
        return self.agents
