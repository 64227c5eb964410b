"""Core methods: health, status, presence, system events, logs."""

from __future__ import annotations

from typing import Any

from moltbot.errors import UsageError
from moltbot.gateway.logs import tail_file, upstream_line
from moltbot.gateway.methods.registry import MethodCall, NoParams, Params, method
from moltbot.gateway.state import now_ms
from moltbot.gateway.status import wire
from moltbot.validation import Field


class HealthParams(Params):
    probe: bool | None = None


@method("health", params=HealthParams, scope="read")
def health(call: MethodCall, params: HealthParams) -> dict[str, Any]:
    if params.probe:
        return wire(call.runtime.refresh_health())
    return wire(call.runtime.health())


@method("status", scope="read")
def status(call: MethodCall, params: NoParams) -> dict[str, Any]:
    return wire(call.runtime.status())


@method("system-presence", scope="read")
def system_presence(call: MethodCall, params: NoParams) -> list[dict[str, Any]]:
    return call.runtime.presence.entries()


class SystemEventParams(Params):
    text: str = Field(min_length=1)
    deviceId: str | None = None
    instanceId: str | None = None
    host: str | None = None
    ip: str | None = None
    mode: str | None = None
    version: str | None = None
    platform: str | None = None
    deviceFamily: str | None = None
    modelIdentifier: str | None = None
    lastInputSeconds: float | None = None
    reason: str | None = None
    roles: list[str] | None = None
    scopes: list[str] | None = None
    tags: list[str] | None = None


@method("system-event", params=SystemEventParams, scope="admin")
async def system_event(call: MethodCall, params: SystemEventParams) -> dict[str, Any]:
    runtime = call.runtime
    key = params.deviceId or params.instanceId or call.connection.conn_id
    runtime.presence.upsert(
        key,
        params.model_dump(exclude={"roles", "scopes"}, exclude_none=True)
        | {"reason": params.reason or "event"},
    )
    runtime.system_events.append(params.text)
    del runtime.system_events[:-100]
    agents = runtime.subsystem("agents")
    if agents is not None and not params.text.startswith("Node:"):  # presence lines stay out
        from moltbot.automation.wake import enqueue_main

        enqueue_main(agents, params.text)
    runtime.presence_changed()
    return {"ok": True}


class LogsTailParams(Params):
    cursor: int | None = Field(default=None, ge=0)
    limit: int = Field(default=500, ge=1, le=5000)
    maxBytes: int = Field(default=250_000, ge=1, le=1_000_000)


@method("logs.tail", params=LogsTailParams, scope="read", bulky=True)
def logs_tail(call: MethodCall, params: LogsTailParams) -> dict[str, Any]:
    """The log's lines after ``cursor`` in upstream's line format (:func:`upstream_line`)."""
    result = tail_file(call.runtime.instance.log_file, params.cursor, params.limit, params.maxBytes)
    result["lines"] = [upstream_line(line) for line in result["lines"]]
    return result


@method("gateway.ping", scope="read", advertise=False)
def ping(call: MethodCall, params: NoParams) -> dict[str, Any]:
    return {"ts": now_ms()}


class UpdateRunParams(Params):
    sessionKey: str | None = None
    note: str | None = None
    restartDelayMs: int | None = Field(default=None, ge=0)
    timeoutMs: int | None = Field(default=None, ge=1)


@method("update.run", params=UpdateRunParams, scope="admin", advertise=False)
def update_run(call: MethodCall, params: UpdateRunParams) -> dict[str, Any]:
    """Upstream's self-update (its Control UI's Update button): a gateway never replaces
    its own package here; it says how instead."""
    raise UsageError(
        "update.run is not supported by this gateway: upgrade the moltbot package "
        "(pip install -U moltbot), then restart the gateway (moltbot gateway restart)"
    )
