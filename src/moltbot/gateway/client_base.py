"""What the two protocol clients share: who the client says it is, the ``connect``
parameters, how a refusal or a close becomes an error, and the frame helpers.

:class:`~moltbot.gateway.client.GatewayClient` (asyncio: streams, events) and
:class:`~moltbot.gateway.sync_client.SyncGatewayClient` (blocking: one call or a few)
both derive from :class:`ClientBase`, so both send the same handshake and raise the
same errors. This module imports neither asyncio nor a WebSocket library.
"""

from __future__ import annotations

import json
import platform
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from moltbot import __version__
from moltbot.errors import (
    NOT_PAIRED,
    AuthError,
    GatewayUnreachableError,
    MethodError,
    MoltbotError,
    PairingRequired,
)

if TYPE_CHECKING:
    from moltbot.gateway.target import Target

PROTOCOL_VERSION = 3
MAX_FRAME_BYTES = 25 * 1024 * 1024


class DeviceSigner(Protocol):
    """Signs a connect (:class:`moltbot.devices.identity.DeviceIdentity`)."""

    def sign(self, proof_fields: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Event:
    """One ``event`` frame: its name, payload and sequence number."""

    name: str
    payload: Any
    seq: int | None = None
    state_version: dict[str, int] | None = None


class ClientBase:
    """A client's identity and credentials. ``timeout`` bounds the connection, the
    handshake and every call (a call may pass its own; ``None`` waits as long as it
    takes)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        password: str | None = None,
        timeout: float | None = 5.0,
        client_id: str = "cli",
        mode: str = "cli",
        scopes: list[str] | None = None,
        role: str | None = None,
        identity: DeviceSigner | None = None,
        display_name: str | None = None,
        instance_id: str | None = None,
        caps: list[str] | None = None,
        commands: list[str] | None = None,
        path_env: str | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.password = password
        self.timeout = timeout
        self.client_id = client_id
        self.mode = mode
        self.scopes = scopes
        self.role = role
        self.identity = identity
        """Signs the connect with this device's key (the node host); else no device."""
        self.display_name = display_name or socket.gethostname()
        self.instance_id = instance_id
        self.caps = caps
        self.commands = commands
        self.path_env = path_env
        self.hello: dict[str, Any] = {}
        """The ``hello-ok`` payload (server, features, snapshot, policy)."""
        self.connect_latency_ms = 0.0

    @classmethod
    def for_target(cls, target: Target, timeout: float | None = 5.0) -> Any:
        """A client for a resolved target (its URL, token and password)."""
        return cls(target.url, token=target.token, password=target.password, timeout=timeout)

    def _params(self, nonce: str | None = None) -> dict[str, Any]:
        client: dict[str, Any] = {
            "id": self.client_id,
            "version": __version__,
            "platform": platform.system().lower() or "unknown",
            "mode": self.mode,
            "displayName": self.display_name,
        }
        if self.instance_id:
            client["instanceId"] = self.instance_id
        params: dict[str, Any] = {
            "minProtocol": PROTOCOL_VERSION,
            "maxProtocol": PROTOCOL_VERSION,
            "client": client,
            "auth": {k: v for k, v in (("token", self.token), ("password", self.password)) if v},
        }
        if self.scopes is not None:
            params["scopes"] = self.scopes
        for key, value in (
            ("role", self.role),
            ("caps", self.caps),
            ("commands", self.commands),
            ("pathEnv", self.path_env),
        ):
            if value is not None:
                params[key] = value
        if self.identity is not None:
            params["device"] = self.identity.sign(
                {
                    "client_id": self.client_id,
                    "client_mode": self.mode,
                    "role": self.role or "operator",
                    "scopes": self.scopes or [],
                    "token": self.token,
                    "nonce": nonce if isinstance(nonce, str) else None,
                }
            )
        return params

    def _connect_frame(self, challenge: dict[str, Any]) -> dict[str, Any]:
        """The ``connect`` request answering the gateway's first frame (its challenge)."""
        if challenge.get("event") != "connect.challenge":
            raise self._not_a_gateway()
        nonce = (challenge.get("payload") or {}).get("nonce")
        return request_frame("connect", "connect", self._params(nonce))

    def _not_a_gateway(self) -> MoltbotError:
        return MoltbotError(f"{self.url} does not speak the gateway protocol")

    def _refusal(self, error: Any) -> MoltbotError:
        refused = MethodError.from_shape(error)
        where = f"gateway at {self.url}"
        if refused.code == NOT_PAIRED and not (self.token or self.password):
            return AuthError(
                f"{where} refused the connection: no token or password was given",
                hint="pass --token (or --password), or set MOLTBOT_GATEWAY_TOKEN",
            )
        if refused.code == NOT_PAIRED:
            return PairingRequired(
                f"{where} requires pairing: {refused.reason}", details=refused.details
            )
        if refused.reason.startswith("unauthorized"):
            return AuthError(f"{where} refused the credentials: {refused.reason}")
        return MethodError(
            refused.code,
            f"{where} refused the connection: {refused.reason}",
            details=refused.details,
        )

    def _closed_error(self, code: int | None, reason: str | None) -> MoltbotError:
        """The error for a connection the gateway closed with ``code`` and ``reason``."""
        reason = reason or "connection closed"
        if code == 1008 and "unauthorized" in reason:
            return AuthError(f"gateway at {self.url} refused the credentials: {reason}")
        return GatewayUnreachableError(
            f"gateway at {self.url} closed the connection ({code}: {reason})"
        )

    def _unreachable(self, exc: BaseException) -> GatewayUnreachableError:
        return GatewayUnreachableError(f"no gateway at {self.url}: {reason(exc)}")

    def _connection_lost(self, exc: BaseException) -> GatewayUnreachableError:
        return GatewayUnreachableError(f"connection to {self.url} lost: {reason(exc)}")

    def _late(self) -> GatewayUnreachableError:
        return GatewayUnreachableError(f"gateway at {self.url} did not answer in time")


def request_frame(request_id: str, method: str, params: Any) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "req", "id": request_id, "method": method}
    if params is not None:
        frame["params"] = params
    return frame


def decode(text: Any) -> dict[str, Any] | None:
    """A frame as a dict, or ``None`` for anything that is not a JSON object (nor JSON,
    nor JSON nested too deep to parse)."""
    try:
        frame = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return None
    return frame if isinstance(frame, dict) else None


def reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return str(exc) or type(exc).__name__


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    """A fast TCP check so a down gateway is reported at once, not after a timeout."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


__all__ = [
    "MAX_FRAME_BYTES",
    "PROTOCOL_VERSION",
    "ClientBase",
    "DeviceSigner",
    "Event",
    "decode",
    "port_open",
    "reason",
    "request_frame",
]
