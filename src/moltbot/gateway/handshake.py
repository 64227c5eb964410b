"""The connect handshake: challenge, params, protocol range, device proof, auth, pairing.

Each check that fails answers the connect request with an error (when it was a
request) and closes the socket with upstream's close code. See
reference/protocol.md §3.3 for the order.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import WSMsgType

from moltbot.devices.identity import DeviceError, Proof, b64url_encode, verify_proof
from moltbot.devices.pairing import ClientFacts
from moltbot.devices.registry import allowed_commands
from moltbot.errors import AuthError, MoltbotError, PairingRequired, UsageError
from moltbot.gateway import protocol
from moltbot.gateway.auth import check_shared
from moltbot.gateway.protocol import ConnectParams
from moltbot.validation import ValidationError

if TYPE_CHECKING:
    from moltbot.gateway.connection import Connection
    from moltbot.gateway.runtime import GatewayRuntime

log = logging.getLogger(__name__)

OPERATOR_SCOPES = (
    "operator.admin",
    "operator.read",
    "operator.write",
    "operator.approvals",
    "operator.pairing",
)


class HandshakeFailed(MoltbotError):
    """The handshake failed: answer the connect request ``request_id`` (when there was
    one) with ``answer``'s error frame, then close the socket with ``close_code``."""

    def __init__(
        self,
        close_code: int,
        reason: str,
        request_id: str | None = None,
        answer: MoltbotError | None = None,
    ) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.request_id = request_id
        self.answer = answer


@dataclass
class Accepted:
    request_id: str
    params: ConnectParams
    device_token: dict[str, Any] | None
    """The device's token record for its role (``hello-ok.auth``)."""


def proof_of(params: ConnectParams, role: str) -> Proof:
    """The facts a connect's device signature covers."""
    device = params.device
    assert device is not None
    return Proof(
        device_id=device.id,
        public_key=device.public_key,
        signature=device.signature,
        signed_at=device.signed_at,
        nonce=device.nonce,
        client_id=params.client.id,
        client_mode=params.client.mode,
        role=role,
        scopes=tuple(params.scopes or ()),
        token=params.auth.token if params.auth else None,
    )


def _fail(close_code: int, request_id: str | None, answer: MoltbotError) -> HandshakeFailed:
    return HandshakeFailed(close_code, answer.message, request_id, answer)


async def perform(runtime: GatewayRuntime, conn: Connection) -> Accepted:
    nonce = secrets.token_hex(16)
    conn.send(protocol.event("connect.challenge", {"nonce": nonce, "ts": int(time.time() * 1000)}))
    try:
        message = await asyncio.wait_for(conn.ws.receive(), runtime.handshake_timeout_s)
    except TimeoutError:
        raise HandshakeFailed(protocol.CLOSE_NORMAL, "handshake timeout") from None
    if message.type == WSMsgType.ERROR:
        raise HandshakeFailed(protocol.CLOSE_TOO_BIG, "frame too large")
    if message.type != WSMsgType.TEXT:
        raise HandshakeFailed(protocol.CLOSE_NORMAL, "closed before connect")
    try:
        frame = orjson.loads(message.data)
    except orjson.JSONDecodeError:
        raise HandshakeFailed(protocol.CLOSE_NORMAL, "invalid frame") from None
    if not (
        isinstance(frame, dict)
        and frame.get("type") == "req"
        and isinstance(frame.get("id"), str)
        and frame["id"]
        and isinstance(frame.get("method"), str)
        and frame["method"]
    ):
        raise HandshakeFailed(protocol.CLOSE_POLICY, "invalid request frame")
    request_id = frame["id"]
    if frame["method"] != "connect":
        raise _fail(
            protocol.CLOSE_POLICY,
            request_id,
            UsageError("invalid handshake: first request must be connect"),
        )
    try:
        params = ConnectParams.model_validate(frame.get("params") or {})
    except ValidationError as exc:
        raise _fail(
            protocol.CLOSE_POLICY,
            request_id,
            UsageError(f"invalid connect params: {protocol.describe_validation(exc)}"),
        ) from None
    if not (params.max_protocol >= protocol.PROTOCOL_VERSION >= params.min_protocol):
        raise _fail(
            protocol.CLOSE_PROTOCOL_ERROR,
            request_id,
            UsageError(
                "protocol mismatch", details={"expectedProtocol": protocol.PROTOCOL_VERSION}
            ),
        )
    role = params.role or "operator"
    if role not in ("operator", "node"):
        raise _fail(protocol.CLOSE_POLICY, request_id, UsageError("invalid role"))
    requested_scopes = list(params.scopes or [])
    scopes = requested_scopes or (["operator.admin"] if role == "operator" else [])

    presented_token = params.auth.token if params.auth else None
    presented_password = params.auth.password if params.auth else None
    raw_key: bytes | None = None
    if params.device is not None:
        try:
            raw_key = verify_proof(proof_of(params, role), nonce, local=conn.local)
        except DeviceError as exc:
            raise _fail(protocol.CLOSE_POLICY, request_id, exc) from None
    elif not (presented_token or presented_password):
        raise _fail(protocol.CLOSE_POLICY, request_id, PairingRequired("device identity required"))

    throttle = runtime.shield.throttle
    wait = throttle.retry_after(conn.remote)
    if wait is not None:
        raise _fail(
            protocol.CLOSE_POLICY,
            request_id,
            AuthError(
                f"unauthorized: too many failed attempts from {conn.remote}; "
                f"retry in {math.ceil(wait)} s",
                retry_after=wait,
            ),
        )
    reason = check_shared(runtime.auth, presented_token, presented_password)
    shared_ok = reason is None
    if (
        not shared_ok
        and params.device
        and presented_token
        and runtime.devices.verify_token(params.device.id, role, presented_token, scopes)
    ):
        reason = None
    if reason is not None:
        throttle.failed(conn.remote)
        hint = (
            "open a tokenized dashboard URL or paste the token in the Control UI settings"
            if params.client.mode in ("ui", "webchat")
            else "pass --token or set CLAWDBOT_GATEWAY_TOKEN to the gateway's token"
        )
        # Which instance answered helps a local client that reached the wrong one (a token
        # of profile rescue sent to profile main's port); a remote client learns nothing.
        where = f"; this is the gateway of profile {runtime.instance.profile}" if conn.local else ""
        raise _fail(
            protocol.CLOSE_POLICY, request_id, AuthError(f"unauthorized: {reason}{where} ({hint})")
        )

    device_token: dict[str, Any] | None = None
    if params.device is not None and raw_key is not None:
        facts = ClientFacts(
            display_name=params.client.display_name,
            platform=params.client.platform,
            client_id=params.client.id,
            client_mode=params.client.mode,
            remote_ip=None if conn.local else conn.remote,
        )
        outcome = runtime.devices.check(
            params.device.id,
            b64url_encode(raw_key),
            role,
            scopes,
            facts,
            auto_approve=conn.local and shared_ok,
        )
        if not outcome.paired:
            if outcome.created:
                runtime.broadcast("device.pair.requested", outcome.request, drop_if_slow=True)
            raise _fail(
                protocol.CLOSE_POLICY,
                request_id,
                PairingRequired(
                    "pairing required", details={"requestId": outcome.request["requestId"]}
                ),
            )
        if outcome.newly_approved:
            log.info("device %s paired automatically (local, role %s)", params.device.id, role)
            runtime.broadcast(
                "device.pair.resolved",
                {
                    "requestId": outcome.request["requestId"],
                    "deviceId": params.device.id,
                    "decision": "approved",
                    "ts": int(time.time() * 1000),
                },
                drop_if_slow=True,
            )
        device_token = outcome.token
        conn.device_id = params.device.id

    if role == "node":
        # a node may only offer what its platform's allowlist permits (others: dropped)
        allowed = allowed_commands(
            runtime.config, params.client.platform, params.client.device_family
        )
        params.commands = [c.strip() for c in params.commands or [] if c.strip() in allowed]
    conn.client = params.client
    conn.role = role
    conn.scopes = frozenset(scopes)
    return Accepted(request_id, params, device_token)
