"""``nodes``: the agent's way to machines paired as nodes (``moltbot node run``).

Actions: ``status`` (the connected nodes and what they can do), ``run`` (a
command line on a node: ``system.run`` under the *node's* exec policy),
``which`` (where binaries are on a node) and ``invoke`` (any other command the
node declared and its platform allows).

When the node's policy needs an operator's approval for a ``run``, the gateway's
``exec.approvals`` subsystem asks its operators (CLI, Control UI, or the chat the
request came from) and, if they agree, the node is asked again with their
decision. Without a running node registry (``moltbot agent --local``) the tool
says so.
"""

from __future__ import annotations

import json
import shlex
import uuid
from pathlib import Path
from typing import Any, Literal

from moltbot.agents.tools.base import Tool, ToolContext, ToolError, ToolParams
from moltbot.agents.tools.exec import APPROVALS, ApprovalRequest
from moltbot.errors import MoltbotError
from moltbot.subsystems import NODES
from moltbot.validation import Field

APPROVAL_REQUIRED = "SYSTEM_RUN_DENIED: approval required"


class NodesParams(ToolParams):
    action: Literal["status", "run", "which", "invoke"] = Field(
        description="status: list nodes; run: a command line on a node; which: find "
        "binaries; invoke: another node command."
    )
    node: str | None = Field(
        default=None, description="Node id, display name or IP (run/which/invoke)."
    )
    command: str | None = Field(
        default=None,
        description="run: the command line; invoke: the node command (e.g. system.notify).",
    )
    cwd: str | None = Field(default=None, description="run: working directory on the node.")
    timeout: int | None = Field(default=None, ge=1, description="run: seconds before it is killed.")
    bins: list[str] | None = Field(default=None, description="which: binary names.")
    params: dict[str, Any] | None = Field(default=None, description="invoke: its params.")


class NodesTool(Tool):
    name = "nodes"
    description = (
        "Use machines paired as nodes: list them (status), run a shell command on one (run), "
        "find binaries (which), or call another command it offers (invoke)."
    )
    Params = NodesParams

    async def run(self, ctx: ToolContext, params: NodesParams) -> str:
        nodes = ctx.lookup(NODES)
        if nodes is None:
            raise ToolError("no node registry is running (nodes need the gateway)")
        if params.action == "status":
            rows = [
                {
                    "nodeId": n.node_id,
                    "displayName": n.display_name,
                    "platform": n.platform,
                    "commands": n.commands,
                }
                for n in nodes.connected()
            ]
            return json.dumps({"nodes": rows}) if rows else "No node is connected."
        if not params.node:
            raise ToolError(f"{params.action} needs `node` (see action status)")
        try:
            session = nodes.resolve(params.node)
        except MoltbotError as exc:
            raise ToolError(exc.message) from None
        if params.action == "which":
            payload = await self._invoke(
                nodes, session, "system.which", {"bins": params.bins or []}
            )
            return json.dumps(payload)
        if params.action == "invoke":
            if not params.command:
                raise ToolError("invoke needs `command`")
            payload = await self._invoke(nodes, session, params.command, params.params or {})
            return json.dumps(payload)
        return await self._run(ctx, nodes, session, params)

    async def _run(self, ctx: ToolContext, nodes: Any, session: Any, params: NodesParams) -> str:
        if not params.command or not params.command.strip():
            raise ToolError("run needs `command`")
        try:
            argv = shlex.split(params.command)
        except ValueError as exc:
            raise ToolError(f"cannot parse the command: {exc}") from None
        body: dict[str, Any] = {
            "command": argv,
            "rawCommand": params.command,
            "agentId": ctx.agent_id,
            "sessionKey": ctx.session_key,
            "runId": ctx.run_id,
        }
        if params.cwd:
            body["cwd"] = params.cwd
        if params.timeout:
            body["timeoutMs"] = params.timeout * 1000
        wait_ms = (params.timeout or ctx.config.tools.exec.timeout_seconds) * 1000 + 10_000
        result = await nodes.invoke(session.node_id, "system.run", body, timeout_ms=wait_ms)
        message = str((result.error or {}).get("message", ""))
        if not result.ok and message.startswith(APPROVAL_REQUIRED):
            decision = await self._ask(ctx, session, params.command, message)
            result = await nodes.invoke(
                session.node_id,
                "system.run",
                {**body, "approved": True, "approvalDecision": decision},
                timeout_ms=wait_ms,
            )
        if not result.ok:
            raise ToolError(f"{session.display_name or session.node_id}: {result.error}")
        payload = result.value() or {}
        status = (
            "timed out (killed)"
            if payload.get("timedOut")
            else f"exit code {payload.get('exitCode')}"
        )
        name = session.display_name or session.node_id[:12]
        output = str(payload.get("stdout", "")).rstrip()
        return f"$ {params.command}  (on {name})\n{output}\n[{status}]"

    @staticmethod
    async def _ask(ctx: ToolContext, session: Any, command: str, why: str) -> str:
        approver = ctx.lookup(APPROVALS)
        if approver is None:
            raise ToolError(f"{why}; no approval channel is available, so it was not run")
        request = ApprovalRequest(
            command,
            f"node {session.display_name or session.node_id[:12]}: {why}",
            Path("."),
            ctx.agent_id,
            ctx.session_key,
            host="node",
            origin=ctx.origin,
        )
        decision = await approver.ask(request)
        if decision not in ("allow-once", "allow-always"):
            raise ToolError(f"not approved by an operator ({why}); it was not run")
        return decision

    @staticmethod
    async def _invoke(nodes: Any, session: Any, command: str, body: dict[str, Any]) -> Any:
        refused = nodes.check_command(session, command)
        if refused is not None:
            raise ToolError(f"{command} is not allowed on this node: {refused}")
        result = await nodes.invoke(
            session.node_id, command, body, idempotency_key=str(uuid.uuid4())
        )
        if not result.ok:
            raise ToolError(f"{command} failed on the node: {result.error}")
        return result.value()
