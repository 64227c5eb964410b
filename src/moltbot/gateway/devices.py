"""Device identity (Ed25519) and the paired-device store of one instance.

A client may present ``device = {id, publicKey, signature, signedAt, nonce?}``
in ``connect``. The id must be the hex SHA-256 of the raw public key, and the
signature must cover upstream's payload string
``v2|deviceId|clientId|clientMode|role|scopes|signedAtMs|token|nonce``
(``v1`` is the same without the nonce, accepted from local clients only).
Paired devices live in ``<state>/devices/paired.json``; pending requests in
``pending.json`` (5 min TTL). Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moltbot.errors import AuthError
from moltbot.fsutil import write_json_atomic
from moltbot.gateway.protocol import SIGNATURE_SKEW_MS, ConnectParams
from moltbot.security.secrets import secret_equals

PENDING_TTL_MS = 5 * 60 * 1000


class DeviceError(AuthError):
    """The connect's device proof is refused (``INVALID_REQUEST``, as upstream)."""


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_public_key(text: str) -> bytes:
    """The raw 32-byte Ed25519 key from base64url or PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if "BEGIN" in text:
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raw = b64url_decode(text)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key has 32 bytes")
    return raw


def signature_payload(params: ConnectParams, role: str, nonce: str | None) -> str:
    device = params.device
    assert device is not None
    scopes = ",".join(params.scopes or [])
    token = (params.auth.token if params.auth else None) or ""
    parts = [
        device.id,
        params.client.id,
        params.client.mode,
        role,
        scopes,
        str(device.signed_at),
        token,
    ]
    if nonce is not None:
        return "|".join(["v2", *parts, nonce])
    return "|".join(["v1", *parts])


def verify_device(
    params: ConnectParams,
    role: str,
    challenge_nonce: str,
    *,
    local: bool,
    now_ms: int | None = None,
) -> bytes:
    """Check a connect's device proof; returns the raw public key. Raises DeviceError."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    device = params.device
    assert device is not None
    try:
        raw = raw_public_key(device.public_key)
    except ValueError:
        raise DeviceError("device public key invalid") from None
    if hashlib.sha256(raw).hexdigest() != device.id:
        raise DeviceError("device identity mismatch")
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    if abs(now_ms - device.signed_at) > SIGNATURE_SKEW_MS:
        raise DeviceError("device signature expired")
    if device.nonce is None and not local:
        raise DeviceError("device nonce required")
    if device.nonce is not None and not secret_equals(device.nonce, challenge_nonce):
        raise DeviceError("device nonce mismatch")
    try:
        signature = b64url_decode(device.signature)
        payload = signature_payload(params, role, device.nonce).encode()
        Ed25519PublicKey.from_public_bytes(raw).verify(signature, payload)
    except (InvalidSignature, ValueError):
        raise DeviceError("device signature invalid") from None
    return raw


@dataclass
class PairingOutcome:
    paired: bool
    token: str | None = None
    request_id: str | None = None
    newly_approved: bool = False


class DeviceStore:
    """``<state>/devices/{paired,pending}.json``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _read(self, name: str) -> dict[str, Any]:
        try:
            data = json.loads((self.directory / name).read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write(self, name: str, data: dict[str, Any]) -> None:
        write_json_atomic(self.directory / name, data)

    def paired(self) -> dict[str, Any]:
        return self._read("paired.json")

    def pending(self) -> dict[str, Any]:
        now = int(time.time() * 1000)
        return {
            k: v
            for k, v in self._read("pending.json").items()
            if now - int(v.get("ts", 0)) < PENDING_TTL_MS
        }

    def check(
        self,
        params: ConnectParams,
        role: str,
        scopes: list[str],
        public_key: str,
        *,
        auto_approve: bool,
    ) -> PairingOutcome:
        device = params.device
        assert device is not None
        paired = self.paired()
        entry = paired.get(device.id)
        now = int(time.time() * 1000)
        if (
            entry
            and entry.get("publicKey") == public_key
            and role in entry.get("roles", [])
            and set(scopes) <= set(entry.get("scopes", []))
        ):
            entry["lastSeenAtMs"] = now
            token = entry.setdefault("tokens", {}).setdefault(role, uuid.uuid4().hex)
            self._write("paired.json", paired)
            return PairingOutcome(True, token)
        if auto_approve:
            roles = sorted({*(entry or {}).get("roles", []), role})
            merged = sorted({*(entry or {}).get("scopes", []), *scopes})
            tokens = (entry or {}).get("tokens", {})
            tokens.setdefault(role, uuid.uuid4().hex)
            paired[device.id] = {
                "deviceId": device.id,
                "publicKey": public_key,
                "roles": roles,
                "scopes": merged,
                "tokens": tokens,
                "clientId": params.client.id,
                "clientMode": params.client.mode,
                "displayName": params.client.display_name,
                "platform": params.client.platform,
                "approvedAtMs": now,
                "lastSeenAtMs": now,
            }
            self._write("paired.json", paired)
            return PairingOutcome(True, tokens[role], newly_approved=True)
        pending = self.pending()
        request_id = next((k for k, v in pending.items() if v.get("deviceId") == device.id), None)
        request_id = request_id or secrets.token_hex(8)
        pending[request_id] = {
            "requestId": request_id,
            "deviceId": device.id,
            "publicKey": public_key,
            "role": role,
            "scopes": scopes,
            "clientId": params.client.id,
            "clientMode": params.client.mode,
            "displayName": params.client.display_name,
            "platform": params.client.platform,
            "ts": now,
        }
        self._write("pending.json", pending)
        return PairingOutcome(False, request_id=request_id)

    def token_matches(self, device_id: str, role: str, token: str) -> bool:
        entry = self.paired().get(device_id) or {}
        stored = (entry.get("tokens") or {}).get(role)
        return isinstance(stored, str) and secret_equals(token, stored)
