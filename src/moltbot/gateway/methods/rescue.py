"""Rescue methods (``operator.admin``): ``rescue.status``, ``rescue.logs``,
``rescue.doctor``, ``rescue.config``, ``rescue.restart`` — the operations of
:mod:`moltbot.rescue` on this instance's granted targets — and ``rescue.audit`` (who
did what).

A change (``rescue.config`` restore/set, ``rescue.restart`` restart/stop/start) is
asked twice: without ``confirm`` it answers ``{status: "confirm", summary, code,
expiresInMs}`` and changes nothing; the same request again with ``confirm: <code>``
(from the same device or connection, before it expires) carries it out and answers
``{status: "ok", text, ...}``. Reads answer ``{status: "ok", text, ...}`` at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from moltbot.errors import MoltbotError
from moltbot.gateway.methods.registry import MethodCall, Params, method
from moltbot.subsystems import RESCUE
from moltbot.validation import Field

if TYPE_CHECKING:
    from moltbot.rescue.audit import Actor
    from moltbot.rescue.service import RescueService


class TargetParams(Params):
    target: str = Field(min_length=1, max_length=64)


class StatusParams(Params):
    target: str | None = Field(default=None, min_length=1, max_length=64)


class AuditParams(Params):
    target: str | None = Field(default=None, min_length=1, max_length=64)
    lines: int | None = Field(default=None, ge=1, le=100)


class LogsParams(TargetParams):
    lines: int | None = Field(default=None, ge=1, le=200)
    grep: str | None = Field(default=None, max_length=200)


class ConfigParams(TargetParams):
    action: Literal["validate", "get", "diff", "history", "restore", "set"]
    key: str | None = Field(default=None, max_length=500)
    value: str | None = Field(default=None, max_length=64 * 1024)
    version: int | None = Field(default=None, ge=1)
    confirm: str | None = Field(default=None, max_length=20)


class RestartParams(TargetParams):
    action: Literal["restart", "stop", "start"] = "restart"
    confirm: str | None = Field(default=None, max_length=20)


def _service(call: MethodCall) -> RescueService:
    service = call.runtime.subsystem(RESCUE)
    if service is None:
        reason = call.runtime.subsystem_errors.get("rescue", "not running")
        raise MoltbotError(f"rescue is unavailable ({reason})")
    return service


def _actor(call: MethodCall) -> Actor:
    from moltbot.rescue.audit import Actor

    connection = call.connection
    who = connection.device_id or connection.conn_id
    label = f"operator {connection.client_id or 'unknown'} ({who[:12]})"
    return Actor("protocol", f"protocol:{who}", label)


async def _run(call: MethodCall, request: Any, confirm: str | None = None) -> dict[str, Any]:
    return await _service(call).call(_actor(call), request, confirm)


def _request(target: str, op: str, **fields: Any) -> Any:
    from moltbot.rescue.operations import Request

    return Request(target, op, **fields)


@method("rescue.status", params=StatusParams, scope="admin")
async def rescue_status(call: MethodCall, params: StatusParams) -> dict[str, Any]:
    """One target's status; without ``target``, every granted target's (``targets``)."""
    if params.target is None:
        return await _service(call).overview(_actor(call))
    return await _run(call, _request(params.target, "status"))


@method("rescue.audit", params=AuditParams, scope="admin")
async def rescue_audit(call: MethodCall, params: AuditParams) -> dict[str, Any]:
    """The last ``lines`` (default 10) steps of this instance's rescue audit log."""
    return await _service(call).audit_log(params.lines, params.target)


@method("rescue.logs", params=LogsParams, scope="admin")
async def rescue_logs(call: MethodCall, params: LogsParams) -> dict[str, Any]:
    return await _run(call, _request(params.target, "logs", lines=params.lines, grep=params.grep))


@method("rescue.doctor", params=TargetParams, scope="admin")
async def rescue_doctor(call: MethodCall, params: TargetParams) -> dict[str, Any]:
    return await _run(call, _request(params.target, "doctor"))


@method("rescue.config", params=ConfigParams, scope="admin")
async def rescue_config(call: MethodCall, params: ConfigParams) -> dict[str, Any]:
    fields: dict[str, Any] = {"key": params.key, "value": params.value}
    if params.action == "history":
        fields = {"lines": params.version}
    elif params.action in ("diff", "restore"):
        fields = {"number": params.version}
    request = _request(params.target, f"config {params.action}", **fields)
    return await _run(call, request, params.confirm)


@method("rescue.restart", params=RestartParams, scope="admin")
async def rescue_restart(call: MethodCall, params: RestartParams) -> dict[str, Any]:
    return await _run(call, _request(params.target, params.action), params.confirm)
