"""Device identity proofs and the paired-device store, on a real state directory.

The handshake tests drive the same code through a gateway; these pin each rule
on its own (and are what ``make mutate`` runs first for ``gateway/devices.py``).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway_harness import near_misses
from moltbot.gateway import devices
from moltbot.gateway.devices import (
    DeviceError,
    DeviceStore,
    b64url_decode,
    b64url_encode,
    raw_public_key,
    signature_payload,
    verify_device,
)
from moltbot.gateway.protocol import SIGNATURE_SKEW_MS, ConnectParams

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
    v2 = signature_payload(params, "operator", "abc").split("|")
    assert v2[0] == "v2" and v2[-1] == "abc" and len(v2) == 9
    assert v2[5] == "operator.read,operator.write" and v2[7] == "t0k"
    v1 = signature_payload(params, "node", None).split("|")
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


@pytest.fixture
def store(tmp_path: Path) -> DeviceStore:
    return DeviceStore(tmp_path / "devices")


def on_disk(store: DeviceStore, name: str) -> dict[str, Any]:
    return json.loads((store.directory / name).read_text())


def check(store: DeviceStore, key: Key, scopes=("operator.read",), role="operator", **kw: Any):
    params = key.params(scopes=scopes, role=role)
    return store.check(params, role, list(scopes), b64url_encode(key.raw), **kw)


def test_auto_approval_then_reconnect_keeps_the_token(store: DeviceStore) -> None:
    key = Key()
    first = check(store, key, auto_approve=True)
    assert first.paired and first.newly_approved and len(first.token or "") == 32
    entry = on_disk(store, "paired.json")[key.id]
    assert entry["roles"] == ["operator"] and entry["scopes"] == ["operator.read"]
    assert entry["publicKey"] == b64url_encode(key.raw)
    again = check(store, key, auto_approve=False)
    assert again.paired and not again.newly_approved and again.token == first.token
    assert store.token_matches(key.id, "operator", first.token or "")


def test_unknown_device_without_approval_waits_as_one_request(store: DeviceStore) -> None:
    key = Key()
    first = check(store, key, auto_approve=False)
    assert not first.paired and first.request_id and first.token is None
    second = check(store, key, auto_approve=False)
    assert second.request_id == first.request_id
    other = check(store, Key(), auto_approve=False)
    assert other.request_id != first.request_id
    assert set(store.pending()) == {first.request_id, other.request_id}
    assert not (store.directory / "paired.json").exists()


def test_pending_requests_expire_after_five_minutes(
    store: DeviceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Key()
    request = check(store, key, auto_approve=False).request_id
    now_ms = 1_800_000_000_000
    monkeypatch.setattr(devices.time, "time", lambda: now_ms / 1000)
    pending = on_disk(store, "pending.json")
    for age_ms, live in ((5 * 60 * 1000 - 1, True), (5 * 60 * 1000, False)):
        pending[request]["ts"] = now_ms - age_ms
        (store.directory / "pending.json").write_text(json.dumps(pending))
        assert (request in store.pending()) is live, age_ms


def test_more_scopes_a_new_role_or_another_key_need_approval_again(store: DeviceStore) -> None:
    key = Key()
    token = check(store, key, auto_approve=True).token
    wider = check(store, key, scopes=("operator.read", "operator.admin"), auto_approve=False)
    assert not wider.paired
    assert not check(store, key, role="node", scopes=(), auto_approve=False).paired
    impostor = Key()
    params = impostor.params(device_id=key.id)  # claims the paired id with another key
    outcome = store.check(
        params, "operator", ["operator.read"], b64url_encode(impostor.raw), auto_approve=False
    )
    assert not outcome.paired
    # Fewer scopes than approved are fine.
    assert check(store, key, scopes=(), auto_approve=False).paired
    # Approving more keeps what was approved before, and the token of the role.
    merged = check(store, key, scopes=("operator.admin",), role="node", auto_approve=True)
    assert merged.paired and merged.newly_approved
    entry = on_disk(store, "paired.json")[key.id]
    assert entry["roles"] == ["node", "operator"]
    assert entry["scopes"] == ["operator.admin", "operator.read"]
    assert entry["tokens"]["operator"] == token and entry["tokens"]["node"] != token


def test_device_token_must_match_exactly_for_its_device_and_role(store: DeviceStore) -> None:
    key = Key()
    token = check(store, key, auto_approve=True).token or ""
    assert store.token_matches(key.id, "operator", token)
    for wrong in near_misses(token):
        assert not store.token_matches(key.id, "operator", wrong), wrong
    assert not store.token_matches(key.id, "node", token)
    assert not store.token_matches(Key().id, "operator", token)
    assert not store.token_matches(key.id, "operator", "")


def test_unreadable_store_files_count_as_empty(store: DeviceStore) -> None:
    store.directory.mkdir(parents=True)
    (store.directory / "paired.json").write_text("{not json")
    (store.directory / "pending.json").write_text("[1, 2]")
    assert store.paired() == {} and store.pending() == {}
    assert not store.token_matches("x", "operator", "y")
