"""Operator device pairing: ``device.pair.*`` and ``device.token.*`` (scope ``pairing``).

Approving or rejecting announces ``device.pair.resolved`` (to operators with
``operator.pairing``); revoking a token also closes that device's open
connections in that role at once.
"""

from __future__ import annotations

from typing import Any

from moltbot.errors import NotFoundError
from moltbot.gateway.methods.registry import MethodCall, NoParams, Params, method
from moltbot.gateway.state import now_ms
from moltbot.validation import Field

NonEmpty = Field(min_length=1)


class RequestIdParams(Params):
    requestId: str = NonEmpty


class RotateParams(Params):
    deviceId: str = NonEmpty
    role: str = NonEmpty
    scopes: list[str] | None = None


class RevokeParams(Params):
    deviceId: str = NonEmpty
    role: str = NonEmpty


def _resolved(call: MethodCall, request_id: str, device_id: str, decision: str) -> None:
    call.runtime.broadcast(
        "device.pair.resolved",
        {"requestId": request_id, "deviceId": device_id, "decision": decision, "ts": now_ms()},
        drop_if_slow=True,
    )


@method("device.pair.list", scope="pairing")
def pair_list(call: MethodCall, params: NoParams) -> dict[str, Any]:
    return call.runtime.devices.listing()


@method("device.pair.approve", params=RequestIdParams, scope="pairing")
def pair_approve(call: MethodCall, params: RequestIdParams) -> dict[str, Any]:
    from moltbot.devices.pairing import redacted

    device = call.runtime.devices.approve(params.requestId)
    if device is None:
        raise NotFoundError("unknown requestId")
    _resolved(call, params.requestId, device["deviceId"], "approved")
    return {"requestId": params.requestId, "device": redacted(device)}


@method("device.pair.reject", params=RequestIdParams, scope="pairing")
def pair_reject(call: MethodCall, params: RequestIdParams) -> dict[str, Any]:
    rejected = call.runtime.devices.reject(params.requestId)
    if rejected is None:
        raise NotFoundError("unknown requestId")
    _resolved(call, params.requestId, rejected["deviceId"], "rejected")
    return rejected


@method("device.token.rotate", params=RotateParams, scope="pairing")
def token_rotate(call: MethodCall, params: RotateParams) -> dict[str, Any]:
    token = call.runtime.devices.rotate(params.deviceId, params.role, params.scopes)
    if token is None:
        raise NotFoundError("unknown deviceId/role")
    return {
        "deviceId": params.deviceId,
        "role": token["role"],
        "token": token["token"],
        "scopes": token["scopes"],
        "rotatedAtMs": token.get("rotatedAtMs") or token["createdAtMs"],
    }


@method("device.token.revoke", params=RevokeParams, scope="pairing")
def token_revoke(call: MethodCall, params: RevokeParams) -> dict[str, Any]:
    token = call.runtime.devices.revoke(params.deviceId, params.role)
    if token is None:
        raise NotFoundError("unknown deviceId/role")
    call.runtime.disconnect_device(params.deviceId, params.role, "device token revoked")
    return {"deviceId": params.deviceId, "role": token["role"], "revokedAtMs": token["revokedAtMs"]}
