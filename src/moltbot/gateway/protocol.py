"""Gateway protocol version 3: constants, frame builders and handshake models.

Frames are JSON text: ``req`` from clients, ``res`` and ``event`` from the
server. Models reject unknown fields, as upstream's schemas do, so unmodified
upstream clients and ours agree on what is valid.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

# The error codes; each class of the error tree carries its own (``error_shape()``).
from moltbot.errors import AGENT_TIMEOUT as AGENT_TIMEOUT
from moltbot.errors import INVALID_REQUEST as INVALID_REQUEST
from moltbot.errors import NOT_LINKED as NOT_LINKED
from moltbot.errors import NOT_PAIRED as NOT_PAIRED
from moltbot.errors import UNAVAILABLE as UNAVAILABLE
from moltbot.validation import BaseModel, ConfigDict, Field

PROTOCOL_VERSION = 3
MAX_PAYLOAD_BYTES = 512 * 1024
MAX_BUFFERED_BYTES = 1536 * 1024
HANDSHAKE_TIMEOUT_S = 10.0
TICK_INTERVAL_MS = 30_000
HEALTH_REFRESH_S = 60.0
DEDUPE_TTL_S = 300.0
DEDUPE_MAX = 1000
SIGNATURE_SKEW_MS = 10 * 60 * 1000
CLOSE_REASON_MAX_BYTES = 120

# Close codes (upstream's, see reference/protocol.md §3.13).
CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_SERVICE_RESTART = 1012

CLIENT_IDS = (
    "webchat-ui",
    "openclaw-control-ui",
    "moltbot-control-ui",
    "webchat",
    "cli",
    "gateway-client",
    "openclaw-macos",
    "openclaw-ios",
    "openclaw-android",
    "node-host",
    "test",
    "fingerprint",
    "openclaw-probe",
    "moltbot-probe",
)
CLIENT_MODES = ("webchat", "cli", "ui", "backend", "node", "probe", "test")

EVENTS = (
    # Only events this gateway sends (``hello-ok.features.events``), in upstream's order.
    "connect.challenge",
    "agent",
    "chat",
    "presence",
    "tick",
    "talk.mode",
    "shutdown",
    "health",
    "heartbeat",
    "cron",
    "node.pair.requested",
    "node.pair.resolved",
    "node.invoke.request",
    "device.pair.requested",
    "device.pair.resolved",
    "voicewake.changed",
    "exec.approval.requested",
    "exec.approval.resolved",
)
DROP_IF_SLOW = frozenset(
    {
        "tick",
        "presence",
        "heartbeat",
        "cron",
        "talk.mode",
        "voicewake.changed",
        "exec.approval.requested",
        "exec.approval.resolved",
        "device.pair.requested",
        "device.pair.resolved",
        "node.pair.requested",
        "node.pair.resolved",
    }
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ClientInfo(_Strict):
    id: Literal[CLIENT_IDS]  # type: ignore[valid-type]
    display_name: str | None = Field(default=None, alias="displayName")
    version: str = Field(min_length=1)
    platform: str = Field(min_length=1)
    device_family: str | None = Field(default=None, alias="deviceFamily")
    model_identifier: str | None = Field(default=None, alias="modelIdentifier")
    mode: Literal[CLIENT_MODES]  # type: ignore[valid-type]
    instance_id: str | None = Field(default=None, alias="instanceId")


class DeviceProof(_Strict):
    id: str = Field(min_length=1)
    public_key: str = Field(min_length=1, alias="publicKey")
    signature: str = Field(min_length=1)
    signed_at: int = Field(ge=0, alias="signedAt")
    nonce: str | None = None


class ConnectAuth(_Strict):
    token: str | None = None
    password: str | None = None


class ConnectParams(_Strict):
    min_protocol: int = Field(ge=1, alias="minProtocol")
    max_protocol: int = Field(ge=1, alias="maxProtocol")
    client: ClientInfo
    caps: list[str] | None = None
    commands: list[str] | None = None
    permissions: dict[str, bool] | None = None
    path_env: str | None = Field(default=None, alias="pathEnv")
    role: str | None = None
    scopes: list[str] | None = None
    device: DeviceProof | None = None
    auth: ConnectAuth | None = None
    locale: str | None = None
    user_agent: str | None = Field(default=None, alias="userAgent")


def dumps(frame: dict[str, Any]) -> bytes:
    """A frame as UTF-8 JSON bytes (sent as a text frame)."""
    return orjson.dumps(frame)


def response(
    request_id: str, payload: Any = None, error: dict[str, Any] | None = None
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "res", "id": request_id, "ok": error is None}
    if payload is not None:
        frame["payload"] = payload
    if error is not None:
        frame["error"] = error
    return frame


def event(
    name: str,
    payload: Any = None,
    *,
    seq: int | None = None,
    state_version: dict[str, int] | None = None,
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "event", "event": name}
    if payload is not None:
        frame["payload"] = payload
    if seq is not None:
        frame["seq"] = seq
    if state_version is not None:
        frame["stateVersion"] = state_version
    return frame


def describe_validation(exc: Exception) -> str:
    """Upstream-style ``at /path: message`` joined by ``; ``."""
    from moltbot.validation import ValidationError

    if not isinstance(exc, ValidationError):
        return str(exc)
    parts = []
    for err in exc.errors():
        path = "/".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"at /{path}: unexpected property '{err['loc'][-1]}'")
        else:
            parts.append(f"at /{path}: {err['msg']}" if path else f"at root: {err['msg']}")
    return "; ".join(parts)


def truncate_reason(reason: str) -> str:
    data = reason.encode()[:CLOSE_REASON_MAX_BYTES]
    return data.decode(errors="ignore")
