"""``moltbot node run``: a headless node that runs commands for a gateway's agents.

It connects to a gateway's WebSocket as ``role: node`` with its own device
identity (``<state>/identity/device.json``), declares ``system.run``,
``system.which`` and ``system.execApprovals.get|set``, and answers each
``node.invoke.request`` with a ``node.invoke.result``. A new node is not paired:
the gateway refuses it (``NOT_PAIRED``) and an operator approves it there
(``moltbot devices approve REQUEST``); the host keeps retrying and is in once
approved. It reconnects after a lost connection (1 s, doubling up to 30 s).

``system.run`` goes through the same exec policy as the gateway's ``exec`` tool,
with **this** instance's config and exec approvals file: ``tools.exec.security``
(allowlist: listed binaries with argument rules, file arguments inside this
instance's workspace; full: ``sh -c``), ``tools.exec.ask`` and the approved
executables. What the policy cannot vouch for runs only when the gateway says an
operator approved it (``approved: true`` or ``approvalDecision``); otherwise the
answer is ``SYSTEM_RUN_DENIED: approval required`` and the gateway may ask its
operators and invoke again. ``allow-always`` adds the executable to this node's
approvals file. Every run is reported to the gateway (``node.event``
``exec.finished`` or ``exec.denied``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shlex
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from moltbot.agents.tools.base import ToolContext, ToolError
from moltbot.agents.tools.exec import APPROVALS, ApprovalRequest, ExecParams, ExecTool, execute
from moltbot.agents.tools.exec_policy import NeedsApproval
from moltbot.devices.approvals import AgentPolicy, ApprovalsFile
from moltbot.errors import ConflictError, GatewayUnreachableError, MoltbotError, PairingRequired

if TYPE_CHECKING:
    from moltbot.config.schema import Config
    from moltbot.instance.resolve import Instance

log = logging.getLogger("moltbot.node")

COMMANDS = ("system.run", "system.which", "system.execApprovals.get", "system.execApprovals.set")
CAPS = ("system",)
EVENT_OUTPUT_TAIL = 20_000
MAX_BACKOFF_S = 30.0

__all__ = ["CAPS", "COMMANDS", "NodeConnection", "NodeHost"]


class NodeConnection(Protocol):
    """What the host needs of a connected protocol client (``GatewayClient``)."""

    hello: dict[str, Any]

    async def connect(self) -> dict[str, Any]: ...

    def events(self) -> AsyncIterator[Any]: ...

    async def call(self, method: str, params: Any = None, **options: Any) -> Any: ...

    async def close(self) -> None: ...


class Denied(ToolError):
    """The policy needs an operator's approval and the gateway sent none."""


class _NodeApprover:
    """The exec tool's approval hook on a node: the gateway's word, given in the invoke."""

    def __init__(self, file: ApprovalsFile, config: Config, decision: str | None) -> None:
        self.file = file
        self.config = config
        self.decision = decision

    def policy(self, agent_id: str) -> AgentPolicy:
        exec_config = self.config.tools.exec
        return self.file.policy(agent_id, exec_config.security, exec_config.ask)

    async def ask(self, request: ApprovalRequest) -> str | None:
        return self.decision

    async def decide(self, request: ApprovalRequest) -> bool:
        if self.decision not in ("allow-once", "allow-always"):
            raise Denied(request.reason)
        if self.decision == "allow-always" and request.resolved_path:
            self.file.allow_always(request.agent_id, request.resolved_path, request.command)
        return True


@dataclass(frozen=True)
class Outcome:
    """A ``node.invoke.result``: ``payload`` (sent as ``payloadJSON``) or an error."""

    ok: bool
    payload: Any = None
    code: str | None = None
    message: str | None = None

    def params(self, request: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": request["id"], "nodeId": request["nodeId"], "ok": self.ok}
        if self.ok:
            out["payloadJSON"] = json.dumps(self.payload)
        else:
            out["error"] = {"code": self.code or "UNAVAILABLE", "message": self.message or "failed"}
        return out


def _error(code: str, message: str) -> Outcome:
    return Outcome(False, code=code, message=message)


class NodeHost:
    """Runs invokes for one gateway (see the module docstring)."""

    def __init__(
        self,
        instance: Instance,
        config: Config,
        env: Mapping[str, str],
        *,
        protected: tuple[Any, ...] = (),
    ) -> None:
        self.instance = instance
        self.config = config
        self.env = env
        self.protected = protected
        self.approvals = ApprovalsFile(instance.exec_approvals_file)
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_event: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None

    # the connection loop ---------------------------------------------------------

    async def serve(
        self,
        connect: Callable[[], NodeConnection],
        stop: asyncio.Event,
        say: Callable[[str], None] = print,
    ) -> None:
        """Connect (again and again) until ``stop`` is set; answer invokes meanwhile."""
        # commands run in this instance's workspace (created like `setup` does: 0700)
        self.instance.workspace.mkdir(parents=True, exist_ok=True, mode=0o700)
        backoff = 1.0
        waiting_for: str | None = None
        while not stop.is_set():
            client = connect()
            events = client.events()  # before connect: the events sent with hello-ok too
            try:
                hello = await client.connect()
            except PairingRequired as exc:
                request = (
                    (exc.details or {}).get("requestId") if isinstance(exc.details, dict) else None
                )
                if request != waiting_for:
                    waiting_for = request
                    say(
                        f"pairing required: approve this node on the gateway host with "
                        f"`moltbot devices approve {request}` (request {request}); retrying"
                    )
                await _sleep(stop, min(backoff, 5.0))
                backoff = min(backoff * 1.5, 5.0)
                continue
            except GatewayUnreachableError as exc:
                say(f"node host: gateway not reachable ({exc.message}); retrying in {backoff:g} s")
                await _sleep(stop, backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            backoff, waiting_for = 1.0, None
            server = (hello.get("server") or {}).get("version", "?")
            say(f"node host connected (gateway {server}); commands: {', '.join(COMMANDS)}")
            try:
                await self._session(client, events, stop)
            finally:
                await client.close()
            if not stop.is_set():
                say("node host: connection lost; reconnecting")
                await _sleep(stop, backoff)

    async def _session(
        self, client: NodeConnection, events: AsyncIterator[Any], stop: asyncio.Event
    ) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while True:
                nxt = asyncio.ensure_future(anext(events))
                done, _ = await asyncio.wait({nxt, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if stopping in done:
                    nxt.cancel()
                    return
                try:
                    event = nxt.result()
                except StopAsyncIteration:
                    return
                if event.name == "node.invoke.request" and isinstance(event.payload, dict):
                    task = asyncio.create_task(self._answer(client, event.payload))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            stopping.cancel()
            for task in list(self._tasks):
                task.cancel()

    async def _answer(self, client: NodeConnection, request: dict[str, Any]) -> None:
        if not all(isinstance(request.get(k), str) for k in ("id", "nodeId", "command")):
            return
        try:
            params = json.loads(request["paramsJSON"]) if request.get("paramsJSON") else {}
        except ValueError as exc:
            outcome = _error("INVALID_REQUEST", f"paramsJSON is not JSON: {exc}")
        else:
            outcome = await self.handle(
                request["command"], params if isinstance(params, dict) else {}, client
            )
        try:
            await client.call("node.invoke.result", outcome.params(request))
        except MoltbotError as exc:  # the gateway went away: it fails the invoke itself
            log.debug("invoke result not delivered: %s", exc.message)

    # commands ------------------------------------------------------------------

    async def handle(
        self, command: str, params: dict[str, Any], client: NodeConnection | None = None
    ) -> Outcome:
        if command == "system.run":
            return await self.system_run(params, client)
        if command == "system.which":
            bins = params.get("bins")
            if not isinstance(bins, list):
                return _error("INVALID_REQUEST", "bins required")
            path = self.env.get("PATH", "")
            found = {
                b.strip(): shutil.which(b.strip(), path=path)
                for b in bins
                if isinstance(b, str) and b.strip() and "/" not in b
            }
            return Outcome(True, {"bins": {k: v for k, v in found.items() if v}})
        if command == "system.execApprovals.get":
            return Outcome(True, self.approvals.snapshot())
        if command == "system.execApprovals.set":
            file = params.get("file")
            if not isinstance(file, dict) or file.get("version") != 1:
                return _error("INVALID_REQUEST", "exec approvals file required (version 1)")
            try:
                return Outcome(True, self.approvals.replace(file, params.get("baseHash")))
            except ConflictError as exc:
                return _error("INVALID_REQUEST", exc.message)
        return _error("UNAVAILABLE", "command not supported")

    async def system_run(self, params: dict[str, Any], client: NodeConnection | None) -> Outcome:
        argv = params.get("command")
        raw = params.get("rawCommand")
        if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
            return _error("INVALID_REQUEST", "command required (an argv array)")
        text = raw.strip() if isinstance(raw, str) and raw.strip() else shlex.join(argv)
        agent_id = str(params.get("agentId") or "main")
        session_key = str(params.get("sessionKey") or "node")
        decision = params.get("approvalDecision")
        if params.get("approved") is True and decision is None:
            decision = "allow-once"
        approver = _NodeApprover(self.approvals, self.config, decision)
        timeout_ms = params.get("timeoutMs")
        env = params.get("env") if isinstance(params.get("env"), dict) else None
        ctx = ToolContext(
            agent_id=agent_id,
            session_key=session_key,
            run_id=str(params.get("runId") or "node"),
            workspace=self.instance.workspace,
            instance=self.instance,
            config=self.config,
            env=self.env,
            logger=log,
            lookup=lambda key: approver if key == APPROVALS else None,
            protected=self.protected,
        )
        tool = ExecTool()
        exec_params = ExecParams(
            command=text,
            workdir=params.get("cwd") if isinstance(params.get("cwd"), str) else None,
            timeout=max(1, int(timeout_ms) // 1000)
            if isinstance(timeout_ms, int) and timeout_ms > 0
            else None,
            env={str(k): str(v) for k, v in env.items()} if env else None,
        )
        base = {"sessionKey": session_key, "runId": ctx.run_id, "host": "node", "command": text}
        try:
            prepared = await tool.prepare(ctx, exec_params)
        except Denied as exc:
            await self._report(client, "exec.denied", {**base, "reason": "approval-required"})
            return _error("UNAVAILABLE", f"SYSTEM_RUN_DENIED: approval required ({exc.message})")
        except NeedsApproval as exc:  # tools.exec.ask is off here
            await self._report(client, "exec.denied", {**base, "reason": "allowlist-miss"})
            return _error("UNAVAILABLE", f"SYSTEM_RUN_DENIED: allowlist miss ({exc.reason})")
        except ToolError as exc:
            if "exec is disabled" in exc.message:
                await self._report(client, "exec.denied", {**base, "reason": "security=deny"})
                return _error("UNAVAILABLE", "SYSTEM_RUN_DISABLED: security=deny")
            return _error("INVALID_REQUEST", exc.message)
        result = await execute(prepared, self.config.tools.exec.max_output_chars)
        success = result.exit_code == 0 and not result.timed_out
        await self._report(
            client,
            "exec.finished",
            {
                **base,
                "exitCode": result.exit_code,
                "timedOut": result.timed_out,
                "success": success,
                "output": result.output[-EVENT_OUTPUT_TAIL:],
            },
        )
        return Outcome(
            True,
            {
                "exitCode": result.exit_code,
                "timedOut": result.timed_out,
                "success": success,
                "stdout": result.output,
                "stderr": "",
                "error": None,
            },
        )

    async def _report(
        self, client: NodeConnection | None, event: str, payload: dict[str, Any]
    ) -> None:
        if client is None:
            return
        try:
            await client.call("node.event", {"event": event, "payloadJSON": json.dumps(payload)})
        except MoltbotError as exc:  # best effort, as upstream's
            log.debug("node event %s not delivered: %s", event, exc.message)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        pass
