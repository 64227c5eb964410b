"""Exec approvals: the file (``exec.approvals.get|set``, admin), a node's file
(``exec.approvals.node.get|set``, through its ``system.execApprovals.*`` commands),
and the requests (``exec.approval.request|resolve``, scope ``approvals``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from moltbot.errors import MoltbotError
from moltbot.gateway.methods.nodes import node_error, registry
from moltbot.gateway.methods.registry import MethodCall, NoParams, Params, method
from moltbot.subsystems import APPROVALS
from moltbot.validation import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from moltbot.devices.approver import ExecApprovals

NonEmpty = Field(min_length=1)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AllowlistEntry(_Strict):
    id: str | None = Field(default=None, min_length=1)
    pattern: str
    lastUsedAt: int | None = Field(default=None, ge=0)
    lastUsedCommand: str | None = None
    lastResolvedPath: str | None = None


class Defaults(_Strict):
    security: str | None = None
    ask: str | None = None
    askFallback: str | None = None
    autoAllowSkills: bool | None = None


class AgentSection(Defaults):
    allowlist: list[AllowlistEntry] | None = None


class Socket(_Strict):
    path: str | None = None
    token: str | None = None


class ApprovalsFileModel(_Strict):
    version: Literal[1]
    socket: Socket | None = None
    defaults: Defaults | None = None
    agents: dict[str, AgentSection] | None = None


async def approvals(call: MethodCall) -> ExecApprovals:
    found = await call.runtime.started(APPROVALS)
    if found is None:
        reason = call.runtime.subsystem_errors.get("exec.approvals", "not running")
        raise MoltbotError(f"exec approvals are unavailable ({reason})")
    return found


@method("exec.approvals.get", scope="admin")
async def approvals_get(call: MethodCall, params: NoParams) -> dict[str, Any]:
    return (await approvals(call)).file.snapshot()


class SetParams(Params):
    file: ApprovalsFileModel
    baseHash: str | None = Field(default=None, min_length=1)


@method("exec.approvals.set", params=SetParams, scope="admin")
async def approvals_set(call: MethodCall, params: SetParams) -> dict[str, Any]:
    file = params.file.model_dump(exclude_none=True)
    return (await approvals(call)).file.replace(file, params.baseHash)


class NodeGetParams(Params):
    nodeId: str = NonEmpty


async def _on_node(call: MethodCall, node_id: str, command: str, params: Any) -> Any:
    nodes = await registry(call)
    nodes.require(node_id.strip())
    result = await nodes.invoke(node_id.strip(), command, params)
    if not result.ok:
        raise node_error(result.error, "node invoke failed")
    return result.value()


@method("exec.approvals.node.get", params=NodeGetParams, scope="admin")
async def node_get(call: MethodCall, params: NodeGetParams) -> Any:
    return await _on_node(call, params.nodeId, "system.execApprovals.get", {})


class NodeSetParams(Params):
    nodeId: str = NonEmpty
    file: ApprovalsFileModel
    baseHash: str | None = Field(default=None, min_length=1)


@method("exec.approvals.node.set", params=NodeSetParams, scope="admin")
async def node_set(call: MethodCall, params: NodeSetParams) -> Any:
    body: dict[str, Any] = {"file": params.file.model_dump(exclude_none=True)}
    if params.baseHash:
        body["baseHash"] = params.baseHash
    return await _on_node(call, params.nodeId, "system.execApprovals.set", body)


class RequestParams(Params):
    id: str | None = Field(default=None, min_length=1)
    command: str = NonEmpty
    cwd: str | None = None
    host: str | None = None
    security: str | None = None
    ask: str | None = None
    agentId: str | None = None
    resolvedPath: str | None = None
    sessionKey: str | None = None
    timeoutMs: int | None = Field(default=None, ge=1)


@method("exec.approval.request", params=RequestParams, scope="approvals")
async def approval_request(call: MethodCall, params: RequestParams) -> dict[str, Any]:
    """Ask the operators; answers once decided (or expired: ``decision: null``)."""
    manager = await approvals(call)
    request = params.model_dump(exclude={"id", "timeoutMs"})
    pending = manager.create(request, params.timeoutMs or 120_000, params.id)
    decision = await manager.wait(pending)
    return {
        "id": pending.id,
        "decision": decision,
        "createdAtMs": pending.created_at_ms,
        "expiresAtMs": pending.expires_at_ms,
    }


class ResolveParams(Params):
    id: str = NonEmpty
    decision: str = NonEmpty


@method("exec.approval.resolve", params=ResolveParams, scope="approvals")
async def approval_resolve(call: MethodCall, params: ResolveParams) -> dict[str, Any]:
    client = call.connection.client
    who = (client.display_name or client.id) if client else None
    (await approvals(call)).resolve(params.id, params.decision, who)
    return {"ok": True}


@method("exec.approval.list", scope="approvals", advertise=False)
async def approval_list(call: MethodCall, params: NoParams) -> dict[str, Any]:
    """The requests waiting now (moltbot's own; ``moltbot approvals pending``)."""
    return {"pending": (await approvals(call)).listing()}
