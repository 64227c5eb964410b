"""Wake and heartbeat methods: ``wake``, ``set-heartbeats``, ``last-heartbeat``."""

from __future__ import annotations

from typing import Any, Literal

from moltbot.errors import MethodError
from moltbot.gateway import protocol
from moltbot.gateway.methods.agents import agents_of
from moltbot.gateway.methods.registry import MethodCall, NoParams, Params, method
from moltbot.validation import Field


class WakeParams(Params):
    mode: Literal["now", "next-heartbeat"]
    text: str = Field(min_length=1)


class SetHeartbeatsParams(Params):
    enabled: bool


@method("wake", params=WakeParams, scope="write")
async def wake(call: MethodCall, params: WakeParams) -> dict[str, Any]:
    """Queue ``text`` for the default agent's main session; ``now`` runs a heartbeat."""
    from moltbot.automation.wake import wake as do_wake

    agents = await agents_of(call)
    ok = do_wake(agents, call.runtime.subsystem("heartbeat"), params.text, params.mode)
    return {"ok": ok}


@method("set-heartbeats", params=SetHeartbeatsParams, scope="admin")
def set_heartbeats(call: MethodCall, params: SetHeartbeatsParams) -> dict[str, Any]:
    runner = call.runtime.subsystem("heartbeat")
    if runner is None:
        raise MethodError(protocol.UNAVAILABLE, "heartbeats are not running", retryable=True)
    runner.set_enabled(params.enabled)
    return {"ok": True, "enabled": params.enabled}


@method("last-heartbeat", scope="read")
def last_heartbeat(call: MethodCall, params: NoParams) -> dict[str, Any] | None:
    """The last ``heartbeat`` event payload since the gateway started, or null."""
    runner = call.runtime.subsystem("heartbeat")
    return None if runner is None else runner.last_event
