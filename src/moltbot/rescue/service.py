"""The ``rescue`` subsystem: the gateway's side of rescue.

It holds what the front-ends inside a gateway share — the pending confirmations and
the current ``rescue.*`` settings — and offers them one entry each:
:meth:`channel_command` (the inbound pipeline of every channel, before the agent),
:meth:`webchat_command` (``chat.send``), :meth:`call` (the ``rescue.*`` protocol
methods) and :meth:`tool_call` (the agent tool). The operations themselves block (file
I/O, processes, waiting for a target to answer), so they run in worker threads.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from moltbot.errors import UsageError
from moltbot.lifecycle import State, SubsystemContext
from moltbot.rescue.audit import Actor, AuditLog
from moltbot.rescue.commands import ChatCommands, Sender, is_command
from moltbot.rescue.confirm import Confirmations
from moltbot.rescue.operations import Change, Outcome, Request, Rescuer

if TYPE_CHECKING:
    from moltbot.channels.base import Channel
    from moltbot.channels.types import InboundMessage
    from moltbot.config.schema import Config


class RescueService:
    """Subsystem ``rescue`` (see :mod:`moltbot.lifecycle`)."""

    name = "rescue"

    def __init__(self, context: SubsystemContext) -> None:
        self.context = context
        self.instance = context.instance
        self.config: Config = context.config
        self.env = context.env
        self.state = State.CREATED
        self.audit = AuditLog(self.instance.state_dir)
        self.confirmations = Confirmations(self.config.rescue.confirm_seconds)
        self._lock = threading.Lock()  # confirmations are used from worker threads

    async def start(self) -> None:
        self.state = State.RUNNING

    async def stop(self) -> None:
        self.state = State.STOPPED

    def status(self) -> dict[str, Any]:
        rescue = self.config.rescue
        return {
            "state": self.state.value,
            "targets": list(rescue.targets),
            "owners": {channel: len(senders) for channel, senders in rescue.owners.items()},
        }

    async def reconfigure(self, config: Config) -> bool:
        self.config = config
        self.confirmations.ttl = config.rescue.confirm_seconds
        return True

    def rescuer(self) -> Rescuer:
        return Rescuer(self.instance, self.config, self.env, self.audit)

    def commands(self) -> ChatCommands:
        return ChatCommands(self.rescuer(), self.confirmations)

    # -- front-ends ---------------------------------------------------------------------

    def channel_command(self, channel: Channel, message: InboundMessage) -> Awaitable[str] | None:
        """The reply (to await) to an inbound channel message that is a ``/rescue``
        command or the sender's confirmation; ``None`` for any other message (it goes to
        the agent). Deciding is quick; the reply may take long (a restart)."""
        text = message.text or ""
        sender = Sender(
            channel=message.channel,
            key=":".join(
                (
                    message.channel,
                    message.account_id,
                    channel.reply_target(message),
                    message.sender.id,
                )
            ),
            label=f"{message.channel}:{message.sender.id}"
            + (f" (@{message.sender.username})" if message.sender.username else ""),
            keys=frozenset(channel.sender_keys(message)),
            normalize=channel.normalize_allow_entry,
        )
        return self._answer(text, sender)

    async def webchat_command(self, text: str, *, session_key: str, admin: bool) -> str | None:
        """The reply to a ``chat.send`` message that is a ``/rescue`` command or an
        operator's confirmation in that session; ``None`` otherwise."""
        sender = Sender(
            channel="webchat",
            key=f"webchat:{session_key}",
            label=f"webchat operator ({'admin' if admin else 'not admin'}, {session_key})",
            admin=admin,
        )
        work = self._answer(text, sender)
        return await work if work is not None else None

    def _answer(self, text: str, sender: Sender) -> Awaitable[str] | None:
        commands = self.commands()
        if not commands.wants(text, sender):
            return None
        return asyncio.to_thread(self._locked, self._reply, commands, text, sender)

    @staticmethod
    def _reply(commands: ChatCommands, text: str, sender: Sender) -> str:
        return commands.handle(text, sender) or "Nothing is waiting for your confirmation."

    def _locked(self, work: Any, *args: Any) -> Any:
        with self._lock:
            return work(*args)

    async def call(self, actor: Actor, request: Request, confirm: str | None) -> dict[str, Any]:
        """A protocol method: a read's outcome; for a change, without ``confirm`` the
        question (``status: "confirm"`` with its ``code``), with the code the outcome.
        :class:`UsageError` for a code that confirms nothing (expired, another change)."""
        return await asyncio.to_thread(self._locked, self._call, actor, request, confirm)

    def _call(self, actor: Actor, request: Request, confirm: str | None) -> dict[str, Any]:
        rescuer = self.rescuer()
        if confirm is None:
            result = rescuer.run(actor, request)
            if isinstance(result, Outcome):
                return {"status": "ok", "text": result.text, **result.data}
            pending = self.confirmations.ask(actor.key, result)
            return {
                "status": "confirm",
                "summary": result.summary,
                "code": pending.code,
                "expiresInMs": int(self.confirmations.ttl * 1000),
            }
        waiting = self.confirmations.waiting(actor.key)
        if waiting is None or waiting.change.request != request:
            raise UsageError(
                "nothing of this request waits for a confirmation (expired, or another request)",
                hint="send the request again without confirm to get a new code",
            )
        pending = self.confirmations.take(actor.key, confirm)
        if pending is None:
            raise UsageError("wrong confirmation code")
        outcome = rescuer.apply(actor, pending.change)
        return {"status": "ok", "text": outcome.text, **outcome.data}

    async def tool_call(self, actor: Actor, confirm_key: str, request: Request) -> str:
        """The agent tool: a read's text; a change is registered for confirmation by
        ``confirm_key`` (the human owner's conversation), never applied by the agent."""
        return await asyncio.to_thread(self._locked, self._tool, actor, confirm_key, request)

    def _tool(self, actor: Actor, confirm_key: str, request: Request) -> str:
        commands = self.commands()
        result = commands.rescuer.run(actor, request)
        if isinstance(result, Change):
            question = commands.ask(confirm_key, result)
            return (
                f"{question}\nThis change is not made until the owner answers in the chat "
                "(you cannot confirm it yourself): tell them so."
            )
        return result.text


__all__ = ["RescueService", "is_command"]
