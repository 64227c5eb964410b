"""Nodes: ``node.list|describe|rename|invoke``, the node-only ``node.invoke.result`` and
``node.event``, and the ``node.pair.*`` store.

A node is *paired* when its device pairing includes the role ``node`` (or it is
in the ``node.pair.*`` store) and *connected* while it has a ``role: node``
connection. ``node.invoke`` runs a command the node declared and its platform
allows (see :mod:`moltbot.devices.registry`).
"""

from __future__ import annotations

import json
from typing import Any

from moltbot.devices.nodes import NODE_FIELDS
from moltbot.devices.registry import NodeRegistry, NodeSession
from moltbot.errors import MethodError, MoltbotError, NotFoundError, UsageError
from moltbot.gateway.methods.registry import MethodCall, NoParams, Params, method
from moltbot.gateway.state import now_ms
from moltbot.subsystems import NODES
from moltbot.validation import Field

NonEmpty = Field(min_length=1)


async def registry(call: MethodCall) -> NodeRegistry:
    nodes = await call.runtime.started(NODES)
    if nodes is None:
        reason = call.runtime.subsystem_errors.get("nodes", "not running")
        raise MoltbotError(f"the node registry is unavailable ({reason})")
    return nodes


def _live_row(session: NodeSession) -> dict[str, Any]:
    return {
        "displayName": session.display_name,
        "platform": session.platform,
        "version": session.version,
        "deviceFamily": session.device_family,
        "modelIdentifier": session.model_identifier,
        "remoteIp": session.remote_ip,
        "caps": sorted(set(session.caps)),
        "commands": sorted(set(session.commands)),
        "pathEnv": session.path_env,
        "permissions": session.permissions,
        "connectedAtMs": session.connected_at_ms,
    }


def known_nodes(call: MethodCall) -> list[dict[str, Any]]:
    """Every paired or connected node, connected first, then by name (upstream's order)."""
    paired: dict[str, dict[str, Any]] = {}
    for device in call.runtime.devices.paired().values():
        roles = device.get("roles") or ([device["role"]] if device.get("role") else [])
        if "node" in roles:
            paired[device["deviceId"]] = {
                "displayName": device.get("displayName"),
                "platform": device.get("platform"),
                "remoteIp": device.get("remoteIp"),
            }
    overrides = call.runtime.node_pairing.paired()
    for node_id, node in overrides.items():
        if node.get("token"):  # approved through node.pair.*
            paired.setdefault(node_id, {}).update(
                {k: node.get(k) for k in NODE_FIELDS if node.get(k) is not None}
            )
    nodes = call.runtime.subsystem(NODES)
    live = {s.node_id: s for s in nodes.connected()} if nodes is not None else {}
    rows = []
    for node_id in {*paired, *live}:
        row: dict[str, Any] = {"nodeId": node_id, "caps": [], "commands": []}
        row.update({k: v for k, v in paired.get(node_id, {}).items() if v is not None})
        if node_id in live:
            row.update({k: v for k, v in _live_row(live[node_id]).items() if v is not None})
        name = (overrides.get(node_id) or {}).get("displayName")
        if name:
            row["displayName"] = name
        row["paired"] = node_id in paired
        row["connected"] = node_id in live
        rows.append(row)
    rows.sort(key=_order)
    return rows


def _order(row: dict[str, Any]) -> tuple[bool, str, str]:
    name = str(row.get("displayName") or row["nodeId"]).lower()
    return (not row["connected"], name, row["nodeId"])


@method("node.list", scope="read")
def node_list(call: MethodCall, params: NoParams) -> dict[str, Any]:
    return {"ts": now_ms(), "nodes": known_nodes(call)}


class NodeIdParams(Params):
    nodeId: str = NonEmpty


@method("node.describe", params=NodeIdParams, scope="read")
def node_describe(call: MethodCall, params: NodeIdParams) -> dict[str, Any]:
    for row in known_nodes(call):
        if row["nodeId"] == params.nodeId.strip():
            return {"ts": now_ms(), **row}
    raise NotFoundError("unknown nodeId")


class RenameParams(Params):
    nodeId: str = NonEmpty
    displayName: str = NonEmpty


@method("node.rename", params=RenameParams, scope="pairing")
def node_rename(call: MethodCall, params: RenameParams) -> dict[str, Any]:
    name = params.displayName.strip()
    if not name:
        raise UsageError("displayName required")
    if not any(row["nodeId"] == params.nodeId for row in known_nodes(call)):
        raise NotFoundError("unknown nodeId")
    node = call.runtime.node_pairing.rename(params.nodeId, name)
    return {"nodeId": node["nodeId"], "displayName": node["displayName"]}


class InvokeParams(Params):
    nodeId: str = NonEmpty
    command: str = NonEmpty
    params: Any = None
    timeoutMs: int | None = Field(default=None, ge=0)
    idempotencyKey: str = NonEmpty


def node_error(result_error: dict[str, Any] | None, fallback: str) -> MethodError:
    error = result_error or {}
    return MethodError(
        "UNAVAILABLE",
        str(error.get("message") or fallback),
        details={"nodeError": result_error},
    )


@method("node.invoke", params=InvokeParams, scope="write")
async def node_invoke(call: MethodCall, params: InvokeParams) -> dict[str, Any]:
    nodes = await registry(call)
    node_id, command = params.nodeId.strip(), params.command.strip()
    session = nodes.require(node_id)
    refused = nodes.check_command(session, command)
    if refused is not None:
        raise UsageError(
            "node command not allowed", details={"reason": refused, "command": command}
        )
    result = await nodes.invoke(
        node_id,
        command,
        params.params,
        timeout_ms=params.timeoutMs,
        idempotency_key=params.idempotencyKey,
    )
    if not result.ok:
        raise node_error(result.error, "node invoke failed")
    return {
        "ok": True,
        "nodeId": node_id,
        "command": command,
        "payload": result.value(),
        "payloadJSON": result.payload_json,
    }


class InvokeError(Params):
    code: str | None = Field(default=None, min_length=1)
    message: str | None = Field(default=None, min_length=1)


class InvokeResultParams(Params):
    id: str = NonEmpty
    nodeId: str = NonEmpty
    ok: bool
    payload: Any = None
    payloadJSON: str | None = None
    error: InvokeError | None = None


@method("node.invoke.result", params=InvokeResultParams, scope="node")
async def node_invoke_result(call: MethodCall, params: InvokeResultParams) -> dict[str, Any]:
    caller = call.connection.device_id or call.connection.client_id
    if caller and caller != params.nodeId:
        raise UsageError("nodeId mismatch")
    nodes = await registry(call)
    error = params.error.model_dump(exclude_none=True) if params.error else None
    taken = nodes.result(
        params.id, params.nodeId, params.ok, params.payload, params.payloadJSON, error
    )
    return {"ok": True} if taken else {"ok": True, "ignored": True}


class NodeEventParams(Params):
    event: str = NonEmpty
    payload: Any = None
    payloadJSON: str | None = None


NODE_EVENTS_LOGGED = ("exec.started", "exec.finished", "exec.denied")


@method("node.event", params=NodeEventParams, scope="node")
def node_event(call: MethodCall, params: NodeEventParams) -> dict[str, Any]:
    """Events a node reports. ``exec.*`` are logged (with the node and session); others
    are accepted and ignored (voice, chat subscriptions: no backend here)."""
    payload = params.payload
    if payload is None and params.payloadJSON:
        try:
            payload = json.loads(params.payloadJSON)
        except ValueError:
            payload = {"raw": params.payloadJSON}
    if params.event in NODE_EVENTS_LOGGED and isinstance(payload, dict):
        node = call.connection.device_id or call.connection.client_id
        from logging import getLogger

        getLogger("moltbot.nodes").info(
            "node %s %s: %s (session %s%s)",
            (node or "?")[:12],
            params.event,
            str(payload.get("command", ""))[:200],
            payload.get("sessionKey"),
            f", exit {payload['exitCode']}" if "exitCode" in payload else "",
        )
    return {"ok": True}


# node.pair.* ---------------------------------------------------------------------


class PairRequestParams(Params):
    nodeId: str = NonEmpty
    displayName: str | None = Field(default=None, min_length=1)
    platform: str | None = Field(default=None, min_length=1)
    version: str | None = Field(default=None, min_length=1)
    coreVersion: str | None = Field(default=None, min_length=1)
    uiVersion: str | None = Field(default=None, min_length=1)
    deviceFamily: str | None = Field(default=None, min_length=1)
    modelIdentifier: str | None = Field(default=None, min_length=1)
    caps: list[str] | None = None
    commands: list[str] | None = None
    remoteIp: str | None = Field(default=None, min_length=1)
    silent: bool | None = None


@method("node.pair.request", params=PairRequestParams, scope="pairing")
def pair_request(call: MethodCall, params: PairRequestParams) -> dict[str, Any]:
    facts = params.model_dump(exclude={"nodeId", "silent"}, exclude_none=True)
    result = call.runtime.node_pairing.request(params.nodeId, facts, silent=bool(params.silent))
    if result["created"]:
        call.runtime.broadcast("node.pair.requested", result["request"], drop_if_slow=True)
    return result


@method("node.pair.list", scope="pairing")
def pair_list(call: MethodCall, params: NoParams) -> dict[str, Any]:
    return call.runtime.node_pairing.listing()


class RequestIdParams(Params):
    requestId: str = NonEmpty


def _resolved(call: MethodCall, request_id: str, node_id: str, decision: str) -> None:
    call.runtime.broadcast(
        "node.pair.resolved",
        {"requestId": request_id, "nodeId": node_id, "decision": decision, "ts": now_ms()},
        drop_if_slow=True,
    )


@method("node.pair.approve", params=RequestIdParams, scope="pairing")
def pair_approve(call: MethodCall, params: RequestIdParams) -> dict[str, Any]:
    approved = call.runtime.node_pairing.approve(params.requestId)
    if approved is None:
        raise NotFoundError("unknown requestId")
    _resolved(call, params.requestId, approved["node"]["nodeId"], "approved")
    return approved


@method("node.pair.reject", params=RequestIdParams, scope="pairing")
def pair_reject(call: MethodCall, params: RequestIdParams) -> dict[str, Any]:
    rejected = call.runtime.node_pairing.reject(params.requestId)
    if rejected is None:
        raise NotFoundError("unknown requestId")
    _resolved(call, params.requestId, rejected["nodeId"], "rejected")
    return rejected


class VerifyParams(Params):
    nodeId: str = NonEmpty
    token: str = NonEmpty


@method("node.pair.verify", params=VerifyParams, scope="pairing")
def pair_verify(call: MethodCall, params: VerifyParams) -> dict[str, Any]:
    return call.runtime.node_pairing.verify(params.nodeId, params.token)
