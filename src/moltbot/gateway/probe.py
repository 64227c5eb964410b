"""What a client learns about an instance's gateway from the outside: whether it
answers (and its own ``status``), and the separate facts `gateway status` reports
(service, process, port owner, RPC and auth). Never raises for a gateway that is
down or refuses: the answer says so."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moltbot.gateway.target import Target
    from moltbot.instance.resolve import Instance


def probe(target: Target, timeout: float) -> dict[str, Any]:
    """Reachability and the gateway's own ``status`` (a :class:`StatusPayload`), failing
    fast when nothing listens: ``{url, source, ok, connectLatencyMs?, status?, kind?,
    error?}`` where ``kind`` is ``down``, ``auth`` or ``error`` (which includes a peer
    whose status is not a moltbot gateway's)."""
    from moltbot.errors import AuthError, MoltbotError
    from moltbot.gateway.client_base import port_open
    from moltbot.gateway.status import StatusPayload, parse
    from moltbot.gateway.sync_client import SyncGatewayClient

    result: dict[str, Any] = {"url": target.url, "source": target.source, "ok": False}
    if not port_open(target.host, target.port, timeout=min(timeout, 0.5)):
        result.update(kind="down", error=f"nothing listens on {target.host}:{target.port}")
        return result
    try:
        with SyncGatewayClient.for_target(target, timeout) as client:
            result["connectLatencyMs"] = round(client.connect_latency_ms, 1)
            result["status"] = parse(StatusPayload, client.call("status"))
            result["ok"] = True
    except AuthError as exc:
        result.update(kind="auth", error=exc.message)
    except MoltbotError as exc:
        result.update(kind="error", error=exc.message)
    return result


def refused_foreign(target: Target, instance: Instance) -> dict[str, Any]:
    """The probe result for a port served by another instance: never tried."""
    return {
        "url": target.url,
        "source": target.source,
        "ok": False,
        "kind": "foreign",
        "error": target.not_running_message(instance.profile),
    }


def gateway_facts(
    instance: Instance, target: Target, timeout: float, env: Mapping[str, str]
) -> dict[str, Any]:
    """Separate facts: service, process and port owner, RPC reachability and auth."""
    from moltbot.gateway.preflight import listeners
    from moltbot.instance.running import drift, read_running

    facts: dict[str, Any] = {
        "profile": instance.profile,
        "url": target.url,
        "source": target.source,
        "drift": drift(instance, read_running(instance)),
    }
    try:
        from moltbot.service.inspect import service_facts

        facts["service"] = service_facts(instance, env)
    except ModuleNotFoundError:
        facts["service"] = {"name": instance.service.systemd_unit, "installed": None}
    runtime = target.runtime or {}
    facts["process"] = {
        "pid": runtime.get("pid"),
        "running": bool(runtime),
        "alive": bool(runtime.get("pid")) and _pid_alive(runtime.get("pid")),
    }
    owners = listeners(target.port) if target.host in ("127.0.0.1", "localhost", "::1") else []
    facts["port"] = {
        "port": target.port,
        "listeners": [{"pid": o.pid, "command": o.command} for o in owners],
        "ownedByGateway": any(o.pid == runtime.get("pid") for o in owners),
    }
    rpc = refused_foreign(target, instance) if target.foreign else probe(target, timeout)
    facts["rpc"] = {k: v for k, v in rpc.items() if k != "status"}
    facts["rpc"]["auth"] = (
        "ok" if rpc["ok"] else ("refused" if rpc.get("kind") == "auth" else "unknown")
    )
    return facts


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
        return True
    except (OSError, ValueError, TypeError):
        return False


__all__ = ["gateway_facts", "probe", "refused_foreign"]
