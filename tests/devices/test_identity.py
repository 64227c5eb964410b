"""Device identity proofs: each rule on its own (the handshake tests drive the same
code through a gateway; ``make mutate`` runs these first for ``devices/identity.py``)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from moltbot.devices.identity import (
    SIGNATURE_SKEW_MS,
    DeviceError,
    DeviceIdentity,
    b64url_decode,
    b64url_encode,
    raw_public_key,
    signature_payload,
    verify_proof,
)
from moltbot.errors import ConfigError
from moltbot.gateway.handshake import proof_of
from moltbot.gateway.protocol import ConnectParams

NONCE = "n" * 32


class Key:
    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        self.raw = self.private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.id = hashlib.sha256(self.raw).hexdigest()

    def params(
        self,
        *,
        nonce: str | None = NONCE,
        token: str = "tok",
        scopes: tuple[str, ...] = ("operator.read",),
        signed_at: int | None = None,
        device_id: str | None = None,
        public_key: str | None = None,
        sign_nonce: str | None = "same",
        role: str = "operator",
    ) -> ConnectParams:
        signed_at = signed_at if signed_at is not None else int(time.time() * 1000)
        device_id = device_id or self.id
        parts = [device_id, "test", "test", role, ",".join(scopes), str(signed_at), token]
        signed = nonce if sign_nonce == "same" else sign_nonce
        text = "|".join(["v2", *parts, signed] if signed is not None else ["v1", *parts])
        device: dict[str, Any] = {
            "id": device_id,
            "publicKey": public_key or b64url_encode(self.raw),
            "signature": b64url_encode(self.private.sign(text.encode())),
            "signedAt": signed_at,
        }
        if nonce is not None:
            device["nonce"] = nonce
        return ConnectParams.model_validate(
            {
                "minProtocol": 3,
                "maxProtocol": 3,
                "client": {"id": "test", "version": "1", "platform": "test", "mode": "test"},
                "auth": {"token": token},
                "scopes": list(scopes),
                "device": device,
            }
        )


def verify_device(params: ConnectParams, role: str, nonce: str, *, local: bool, **kw: Any) -> bytes:
    return verify_proof(proof_of(params, role), nonce, local=local, **kw)


def refused(params: ConnectParams, *, local: bool = False, **kw: Any) -> str:
    with pytest.raises(DeviceError) as info:
        verify_device(params, "operator", NONCE, local=local, **kw)
    return info.value.message


def test_base64url_round_trip_without_padding() -> None:
    for size in range(6):
        data = bytes(range(size))
        text = b64url_encode(data)
        assert "=" not in text and b64url_decode(text) == data


def test_public_key_formats() -> None:
    key = Key()
    assert raw_public_key(b64url_encode(key.raw)) == key.raw
    pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert raw_public_key(pem.decode()) == key.raw
    with pytest.raises(ValueError, match="32 bytes"):
        raw_public_key(b64url_encode(key.raw[:31]))
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    other_pem = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="not an Ed25519 key"):
        raw_public_key(other_pem.decode())


def test_signature_payload_v1_and_v2() -> None:
    params = Key().params(scopes=("operator.read", "operator.write"), token="t0k")
    v2 = signature_payload(proof_of(params, "operator")).split("|")
    assert v2[0] == "v2" and v2[-1] == NONCE and len(v2) == 9
    assert v2[5] == "operator.read,operator.write" and v2[7] == "t0k"
    v1 = signature_payload(proof_of(Key().params(nonce=None), "node")).split("|")
    assert v1[0] == "v1" and len(v1) == 8 and v1[4] == "node"


def test_valid_proof_returns_the_raw_key() -> None:
    key = Key()
    assert verify_device(key.params(), "operator", NONCE, local=False) == key.raw


def test_each_broken_proof_is_refused() -> None:
    key = Key()
    assert refused(key.params(public_key="AAAA")) == "device public key invalid"
    assert refused(key.params(device_id=Key().id)) == "device identity mismatch"
    assert refused(key.params(device_id=key.id[:-1] + "0")) == "device identity mismatch"
    old = int(time.time() * 1000) - SIGNATURE_SKEW_MS - 60_000
    assert refused(key.params(signed_at=old)) == "device signature expired"
    future = int(time.time() * 1000) + SIGNATURE_SKEW_MS + 60_000
    assert refused(key.params(signed_at=future)) == "device signature expired"
    assert refused(key.params(nonce="m" * 32)) == "device nonce mismatch"
    assert refused(key.params(nonce=NONCE[:-1])) == "device nonce mismatch"
    assert refused(key.params(sign_nonce="other")) == "device signature invalid"
    assert refused(key.params(role="node")) == "device signature invalid"
    params = key.params()
    assert params.device is not None
    params.device.signature = "!!not base64!!"
    assert refused(params) == "device signature invalid"


def test_signature_age_limit_is_inclusive() -> None:
    key = Key()
    signed_at = 1_000_000_000_000
    at_limit = signed_at + SIGNATURE_SKEW_MS
    params = key.params(signed_at=signed_at)
    assert verify_device(params, "operator", NONCE, local=False, now_ms=at_limit) == key.raw
    assert refused(params, now_ms=at_limit + 1) == "device signature expired"
    assert refused(params, now_ms=signed_at - SIGNATURE_SKEW_MS - 1) == "device signature expired"


def test_a_proof_without_nonce_only_from_local_clients() -> None:
    key = Key()
    v1 = key.params(nonce=None)
    assert refused(v1, local=False) == "device nonce required"
    assert verify_device(v1, "operator", NONCE, local=True) == key.raw


def test_a_client_identity_signs_proofs_the_gateway_accepts(tmp_path: Path) -> None:
    path = tmp_path / "identity" / "device.json"
    identity = DeviceIdentity.load_or_create(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = DeviceIdentity.load_or_create(path)
    assert again.device_id == identity.device_id  # the same identity on every run
    device = identity.sign(
        {
            "client_id": "node-host",
            "client_mode": "node",
            "role": "node",
            "scopes": [],
            "token": "tok",
            "nonce": NONCE,
        }
    )
    params = ConnectParams.model_validate(
        {
            "minProtocol": 3,
            "maxProtocol": 3,
            "client": {"id": "node-host", "version": "1", "platform": "linux", "mode": "node"},
            "auth": {"token": "tok"},
            "role": "node",
            "device": device,
        }
    )
    assert verify_device(params, "node", NONCE, local=False) == identity.public_raw
    assert refused(params) == "device signature invalid"  # signed for role node only
    path.write_text('{"privateKey": 5}')
    with pytest.raises(ConfigError, match="not a device identity"):
        DeviceIdentity.load_or_create(path)
    assert path.read_text() == '{"privateKey": 5}'  # never overwritten
