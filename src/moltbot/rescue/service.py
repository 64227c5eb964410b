"""The ``rescue`` subsystem: the gateway's side of rescue.

It holds what the front-ends inside a gateway share — the pending confirmations and
the current ``rescue.*`` settings — and offers them one entry each: :meth:`command`
(the ``/rescue`` chat command, in every channel and WebChat, through the chat-command
layer), :meth:`call` (the ``rescue.*`` protocol methods) and :meth:`tool_call` (the
agent tool). The operations themselves block (file
I/O, processes, waiting for a target to answer), so they run in worker threads.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from moltbot.errors import UsageError
from moltbot.lifecycle import State, SubsystemContext
from moltbot.rescue.audit import Actor, AuditLog
from moltbot.rescue.confirm import Confirmations

if TYPE_CHECKING:
    from moltbot.config.schema import Config
    from moltbot.rescue.commands import ChatCommands, Sender
    from moltbot.rescue.operations import Request, Rescuer


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
        # the operations (and the chat commands) load with the first use: an idle
        # gateway holds neither
        from moltbot.rescue.operations import Rescuer

        return Rescuer(self.instance, self.config, self.env, self.audit)

    def commands(self) -> ChatCommands:
        from moltbot.rescue.commands import ChatCommands

        return ChatCommands(self.rescuer(), self.confirmations)

    # -- front-ends ---------------------------------------------------------------------

    async def command(self, text: str, sender: Sender) -> str:
        """The reply to a ``/rescue`` chat command, or to ``sender``'s answer to a change
        waiting for its confirmation (the chat-command layer hands both over: see
        :mod:`moltbot.rescue.commands`). Runs in a worker thread (a restart waits)."""
        return await asyncio.to_thread(self._locked, self._reply, self.commands(), text, sender)

    @staticmethod
    def _reply(commands: ChatCommands, text: str, sender: Sender) -> str:
        return commands.handle(text, sender) or "Nothing is waiting for your confirmation."

    def _locked(self, work: Any, *args: Any) -> Any:
        with self._lock:
            return work(*args)

    async def overview(self, actor: Actor) -> dict[str, Any]:
        """``rescue.status`` without a target: every granted target's status."""
        outcome = await asyncio.to_thread(self._locked, self.rescuer().overview, actor)
        return {"status": "ok", "text": outcome.text, **outcome.data}

    async def audit_log(self, count: int | None, target: str | None) -> dict[str, Any]:
        """``rescue.audit``: the last steps of the audit log."""
        outcome = await asyncio.to_thread(self.rescuer().recent, count, target)
        return {"status": "ok", "text": outcome.text, **outcome.data}

    async def call(self, actor: Actor, request: Request, confirm: str | None) -> dict[str, Any]:
        """A protocol method: a read's outcome; for a change, without ``confirm`` the
        question (``status: "confirm"`` with its ``code``), with the code the outcome.
        :class:`UsageError` for a code that confirms nothing (expired, another change)."""
        return await asyncio.to_thread(self._locked, self._call, actor, request, confirm)

    def _call(self, actor: Actor, request: Request, confirm: str | None) -> dict[str, Any]:
        from moltbot.rescue.operations import Outcome

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
        from moltbot.rescue.operations import Change

        commands = self.commands()
        result = commands.rescuer.run(actor, request)
        if isinstance(result, Change):
            question = commands.ask(confirm_key, result)
            return (
                f"{question}\nThis change is not made until the owner answers in the chat "
                "(you cannot confirm it yourself): tell them so."
            )
        return result.text


__all__ = ["RescueService"]
