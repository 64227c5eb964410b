"""Device identity (Ed25519): the proof a client signs in ``connect``, and a client's key.

A client may present ``device = {id, publicKey, signature, signedAt, nonce?}`` in
``connect``. The id must be the hex SHA-256 of the raw public key, and the
signature must cover upstream's payload string
``v2|deviceId|clientId|clientMode|role|scopes|signedAtMs|token|nonce``
(``v1`` is the same without the nonce, accepted from local clients only).

:class:`DeviceIdentity` is the other side: a client's key pair, kept in one file
(``0600``) and used to sign its connects (the node host, ``moltbot node run``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moltbot.errors import AuthError, ConfigError
from moltbot.fsutil import write_json_atomic
from moltbot.security.secrets import secret_equals

SIGNATURE_SKEW_MS = 10 * 60 * 1000
"""How far ``signedAt`` may be from the gateway's clock (either way)."""

__all__ = [
    "SIGNATURE_SKEW_MS",
    "DeviceError",
    "DeviceIdentity",
    "Proof",
    "b64url_decode",
    "b64url_encode",
    "raw_public_key",
    "signature_payload",
    "verify_proof",
]


class DeviceError(AuthError):
    """The connect's device proof is refused (``INVALID_REQUEST``, as upstream)."""


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_public_key(text: str) -> bytes:
    """The raw 32-byte Ed25519 key from base64url or PEM; ``ValueError`` otherwise."""
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


@dataclass(frozen=True)
class Proof:
    """The signed facts of one connect (``device`` plus what its signature covers)."""

    device_id: str
    public_key: str
    signature: str
    signed_at: int
    nonce: str | None
    client_id: str
    client_mode: str
    role: str
    scopes: tuple[str, ...]
    """The scopes *as requested* (before the operator default)."""
    token: str | None


def signature_payload(proof: Proof) -> str:
    parts = [
        proof.device_id,
        proof.client_id,
        proof.client_mode,
        proof.role,
        ",".join(proof.scopes),
        str(proof.signed_at),
        proof.token or "",
    ]
    if proof.nonce is not None:
        return "|".join(["v2", *parts, proof.nonce])
    return "|".join(["v1", *parts])


def verify_proof(
    proof: Proof, challenge_nonce: str, *, local: bool, now_ms: int | None = None
) -> bytes:
    """Check a connect's device proof; returns the raw public key. Raises DeviceError."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        raw = raw_public_key(proof.public_key)
    except ValueError:
        raise DeviceError("device public key invalid") from None
    if hashlib.sha256(raw).hexdigest() != proof.device_id:
        raise DeviceError("device identity mismatch")
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    if abs(now_ms - proof.signed_at) > SIGNATURE_SKEW_MS:
        raise DeviceError("device signature expired")
    if proof.nonce is None and not local:
        raise DeviceError("device nonce required")
    if proof.nonce is not None and not secret_equals(proof.nonce, challenge_nonce):
        raise DeviceError("device nonce mismatch")
    try:
        signature = b64url_decode(proof.signature)
        Ed25519PublicKey.from_public_bytes(raw).verify(signature, signature_payload(proof).encode())
    except (InvalidSignature, ValueError):
        raise DeviceError("device signature invalid") from None
    return raw


class DeviceIdentity:
    """A client's Ed25519 key pair, in one JSON file (``0600``): created on first use,
    then the same identity (and so the same pairing) on every run."""

    def __init__(self, private_raw: bytes) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self._key = Ed25519PrivateKey.from_private_bytes(private_raw)
        self.public_raw = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.device_id = hashlib.sha256(self.public_raw).hexdigest()
        self.public_key = b64url_encode(self.public_raw)

    @classmethod
    def load_or_create(cls, path: Path) -> DeviceIdentity:
        """The identity in ``path``, or a new one written there. A file that is not
        an identity is refused (ConfigError), never overwritten."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            key = Ed25519PrivateKey.generate()
            raw = key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            identity = cls(raw)
            write_json_atomic(
                path,
                {
                    "version": 1,
                    "deviceId": identity.device_id,
                    "publicKey": identity.public_key,
                    "privateKey": b64url_encode(raw),
                    "createdAtMs": int(time.time() * 1000),
                },
            )
            return identity
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the device identity {path}: {exc}") from None
        try:
            return cls(b64url_decode(str(data["privateKey"])))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(
                f"{path} is not a device identity (no valid privateKey)",
                hint="move it away; a new identity is created (and must be paired again)",
            ) from None

    def sign(self, proof_fields: dict[str, Any]) -> dict[str, Any]:
        """The ``device`` object of a connect: ``proof_fields`` are ``client_id``,
        ``client_mode``, ``role``, ``scopes``, ``token`` and ``nonce``."""
        signed_at = int(time.time() * 1000)
        proof = Proof(
            device_id=self.device_id,
            public_key=self.public_key,
            signature="",
            signed_at=signed_at,
            nonce=proof_fields.get("nonce"),
            client_id=proof_fields["client_id"],
            client_mode=proof_fields["client_mode"],
            role=proof_fields["role"],
            scopes=tuple(proof_fields.get("scopes") or ()),
            token=proof_fields.get("token"),
        )
        device: dict[str, Any] = {
            "id": self.device_id,
            "publicKey": self.public_key,
            "signature": b64url_encode(self._key.sign(signature_payload(proof).encode())),
            "signedAt": signed_at,
        }
        if proof.nonce is not None:
            device["nonce"] = proof.nonce
        return device
