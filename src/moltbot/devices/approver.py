"""The ``exec.approvals`` subsystem: operators decide what ``exec`` may run.

A command that the exec policy cannot vouch for (or every command, with
``tools.exec.ask: always``) becomes an approval request: the gateway announces
it (``exec.approval.requested {id, request, createdAtMs, expiresAtMs}``, to
operators with ``operator.approvals``) and the agent's turn waits. An operator
answers ``allow-once``, ``allow-always`` (the executable joins the agent's
allowlist in the approvals file) or ``deny``:

- with ``moltbot approvals approve|deny ID`` (``exec.approval.resolve``),
- in the Control UI's approval prompt,
- or in the direct conversation that asked, with the chat commands ``/approve ID
  [allow-once|allow-always]`` and ``/deny ID`` (:mod:`moltbot.devices.commands`,
  answered by the command layer before any model). A group cannot approve commands.

Every decision is announced (``exec.approval.resolved {id, decision, resolvedBy,
ts}``). A request that nobody answers within its timeout
(``tools.exec.approvalTimeoutSeconds``, default 120) resolves to ``null`` and
``askFallback`` applies. Stopping the gateway answers every waiting request
with a deny.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from moltbot.devices.approvals import DECISIONS, AgentPolicy, ApprovalsFile
from moltbot.errors import NotFoundError, UsageError
from moltbot.lifecycle import State, SubsystemContext
from moltbot.subsystems import AGENTS, CHANNELS

if TYPE_CHECKING:
    from moltbot.agents.tools.exec import ApprovalRequest
    from moltbot.config.schema import Config
    from moltbot.sessions.origin import Origin

__all__ = ["ExecApprovals", "Pending"]


@dataclass
class Pending:
    id: str
    request: dict[str, Any]
    created_at_ms: int
    expires_at_ms: int
    future: asyncio.Future[str | None] = field(repr=False)
    direct: bool = True
    """Whether a chat reply in its session may answer it (not from a group)."""

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "request": self.request,
            "createdAtMs": self.created_at_ms,
            "expiresAtMs": self.expires_at_ms,
        }


class ExecApprovals:
    """Pending approval requests and the approvals file (see the module docstring)."""

    name = "exec.approvals"

    def __init__(self, context: SubsystemContext) -> None:
        self.ctx = context
        self.state = State.CREATED
        self.file = ApprovalsFile(context.instance.exec_approvals_file)
        self.pending: dict[str, Pending] = {}
        self.decided = 0

    @property
    def config(self) -> Config:
        return self.ctx.config

    async def start(self) -> None:
        self.state = State.RUNNING

    async def stop(self) -> None:
        self.state = State.STOPPING
        for pending in list(self.pending.values()):
            if not pending.future.done():
                pending.future.set_result("deny")
        self.pending.clear()
        self.state = State.STOPPED

    def status(self) -> dict[str, Any]:
        return {"state": str(self.state), "pending": len(self.pending), "file": str(self.file.path)}

    async def reconfigure(self, config: Config) -> bool:
        self.ctx.config = config
        return True

    # policy ------------------------------------------------------------------

    def policy(self, agent_id: str) -> AgentPolicy:
        """The effective exec policy of ``agent_id`` (config tightened by the file)."""
        exec_config = self.config.tools.exec
        return self.file.policy(agent_id, exec_config.security, exec_config.ask)

    def timeout_ms(self) -> int:
        return int(self.config.tools.exec.approval_timeout_seconds * 1000)

    # requests ----------------------------------------------------------------

    def create(
        self,
        request: dict[str, Any],
        timeout_ms: int,
        request_id: str | None = None,
        *,
        direct: bool = True,
    ) -> Pending:
        """Register and announce a request; await :meth:`wait` for its decision."""
        request_id = (request_id or "").strip() or str(uuid.uuid4())
        if request_id in self.pending:
            raise UsageError("approval id already pending")
        now = int(time.time() * 1000)
        pending = Pending(
            request_id,
            request,
            now,
            now + timeout_ms,
            asyncio.get_running_loop().create_future(),
            direct,
        )
        self.pending[request_id] = pending
        self.ctx.broadcast("exec.approval.requested", pending.wire(), drop_if_slow=True)
        self.ctx.logger.info(
            "exec approval %s requested: %s", request_id, str(request.get("command"))[:200]
        )
        return pending

    async def wait(self, pending: Pending) -> str | None:
        """The decision, or ``None`` when nobody answered before it expired."""
        remaining = max(0.0, (pending.expires_at_ms - time.time() * 1000) / 1000)
        try:
            return await asyncio.wait_for(asyncio.shield(pending.future), remaining)
        except TimeoutError:
            self.ctx.logger.info("exec approval %s expired unanswered", pending.id)
            return None
        finally:
            self.pending.pop(pending.id, None)

    def resolve(self, request_id: str, decision: str, resolved_by: str | None) -> None:
        """Answer a waiting request. Raises NotFoundError ("unknown approval id")."""
        if decision not in DECISIONS:
            raise UsageError("invalid decision")
        pending = self.pending.get(request_id)
        if pending is None or pending.future.done():
            raise NotFoundError("unknown approval id")
        pending.future.set_result(decision)
        self.decided += 1
        payload: dict[str, Any] = {"id": request_id, "decision": decision, "ts": _now()}
        if resolved_by:
            payload["resolvedBy"] = resolved_by
        self.ctx.broadcast("exec.approval.resolved", payload, drop_if_slow=True)
        self.ctx.logger.info(
            "exec approval %s: %s (by %s)", request_id, decision, resolved_by or "?"
        )

    def waiting(self, session_key: str) -> list[Pending]:
        """The unanswered requests of ``session_key``'s runs, oldest first."""
        found = [
            p
            for p in self.pending.values()
            if p.request.get("sessionKey") == session_key and not p.future.done()
        ]
        return sorted(found, key=lambda p: p.created_at_ms)

    def listing(self) -> list[dict[str, Any]]:
        return [p.wire() for p in sorted(self.pending.values(), key=lambda p: p.created_at_ms)]

    # the exec tool's hook ----------------------------------------------------

    async def decide(self, request: ApprovalRequest) -> bool:
        """Ask an operator about ``request``; True to run it. Nobody answering in time
        applies ``askFallback`` (``full``: run; ``allowlist``: run what the allowlist
        vouched for; ``deny``). "Allow always" adds its executable to the allowlist."""
        decision = await self.ask(request)
        if decision is None:
            fallback = self.policy(request.agent_id).ask_fallback
            return fallback == "full" or (fallback == "allowlist" and request.allowlisted)
        if decision == "allow-always" and request.resolved_path and request.host == "gateway":
            self.file.allow_always(request.agent_id, request.resolved_path, request.command)
        return decision in ("allow-once", "allow-always")

    async def ask(self, request: ApprovalRequest) -> str | None:
        """Announce ``request``, tell the conversation that asked (a channel), and wait:
        the decision, or ``None`` when nobody answered in time."""
        policy = self.policy(request.agent_id)
        pending = self.create(
            {
                "command": request.command,
                "cwd": str(request.cwd),
                "host": request.host,
                "security": policy.security,
                "ask": policy.ask,
                "agentId": request.agent_id,
                "resolvedPath": request.resolved_path,
                "sessionKey": request.session_key,
            },
            self.timeout_ms(),
            direct=False,
        )
        origin = request.origin or await self._origin(request.agent_id, request.session_key)
        pending.direct = origin is None or origin.chat_type in (None, "direct")
        if origin is not None and origin.channel and origin.to:
            await self._tell(origin, self.prompt(pending, request.reason))
        return await self.wait(pending)

    async def _origin(self, agent_id: str, session_key: str) -> Origin | None:
        """Where the session's last message came from (``None``: WebChat or an API)."""
        agents = self.ctx.lookup(AGENTS)
        if agents is None:
            return None
        try:
            entry = await agents.store(agent_id).get(session_key)
        except Exception:  # an unreadable index must not block the approval itself
            return None
        return entry.origin if entry is not None else None

    async def _tell(self, origin: Origin, text: str) -> None:
        """Tell the conversation that asked (best effort: the request stands anyway)."""
        from moltbot.channels.types import OutboundMessage

        channels = self.ctx.lookup(CHANNELS)
        if channels is None or origin.to is None:
            return
        try:
            await channels.send(
                origin.channel,
                origin.to,
                OutboundMessage(text, thread_id=origin.thread_id, plain=True),
                account_id=origin.account_id,
            )
        except Exception as exc:  # noqa: BLE001 - any channel failure: logged, not fatal
            self.ctx.logger.warning("exec approval notice to %s failed: %s", origin.channel, exc)

    @staticmethod
    def prompt(pending: Pending, reason: str) -> str:
        """What the conversation that asked is told."""
        if pending.direct:
            how = (
                f"Reply /approve {pending.id} (once), /approve {pending.id} allow-always, "
                f"or /deny {pending.id}."
            )
        else:  # a group cannot approve (see moltbot.devices.commands)
            how = (
                "An operator answers in the Control UI or with "
                f"`moltbot approvals approve {pending.id}`."
            )
        seconds = max(1, (pending.expires_at_ms - pending.created_at_ms) // 1000)
        return (
            f"⚠️ exec needs an operator's approval ({reason}):\n"
            f"    {pending.request.get('command')}\n{how} Expires in {seconds} s."
        )


def _now() -> int:
    return int(time.time() * 1000)
