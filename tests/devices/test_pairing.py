"""The paired-device store on a real state directory: each rule on its own (the gateway
tests drive it through the handshake and ``device.*`` methods)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway_harness import near_misses
from moltbot.devices import pairing
from moltbot.devices.pairing import ClientFacts, DevicePairing

FACTS = ClientFacts(display_name="laptop", platform="linux", client_id="cli", client_mode="cli")


@pytest.fixture
def store(tmp_path: Path) -> DevicePairing:
    return DevicePairing(tmp_path / "devices")


def on_disk(store: DevicePairing, name: str) -> dict[str, Any]:
    return json.loads((store.directory / name).read_text())


def check(
    store: DevicePairing,
    device: str = "d1",
    key: str = "key1",
    role: str = "operator",
    scopes: tuple[str, ...] = ("operator.read",),
    **kw: Any,
) -> pairing.PairingOutcome:
    return store.check(device, key, role, list(scopes), FACTS, **kw)


def test_local_auto_approval_then_reconnect_keeps_the_token(store: DevicePairing) -> None:
    first = check(store, auto_approve=True)
    assert first.paired and first.newly_approved and first.token is not None
    assert len(first.token["token"]) == 32 and first.token["scopes"] == ["operator.read"]
    entry = on_disk(store, "paired.json")["d1"]
    assert entry["roles"] == ["operator"] and entry["scopes"] == ["operator.read"]
    assert entry["publicKey"] == "key1" and entry["displayName"] == "laptop"
    assert entry["tokens"]["operator"]["token"] == first.token["token"]
    assert on_disk(store, "pending.json") == {}  # the request was consumed
    again = check(store, auto_approve=False)
    assert again.paired and not again.newly_approved
    assert again.token is not None and again.token["token"] == first.token["token"]
    assert oct((store.directory / "paired.json").stat().st_mode & 0o777) == "0o600"


def test_an_unknown_device_waits_as_one_request(store: DevicePairing) -> None:
    first = check(store, auto_approve=False)
    assert not first.paired and first.created and first.token is None
    request = first.request
    assert request["deviceId"] == "d1" and request["role"] == "operator"
    assert request["roles"] == ["operator"] and request["isRepair"] is False
    assert None not in request.values()  # upstream's schema wants non-empty strings
    second = check(store, auto_approve=False)
    assert not second.created and second.request["requestId"] == request["requestId"]
    other = check(store, device="d2", key="key2", auto_approve=False)
    assert other.created and other.request["requestId"] != request["requestId"]
    assert set(store.pending()) == {request["requestId"], other.request["requestId"]}
    assert not (store.directory / "paired.json").exists()


def test_pending_requests_expire_after_five_minutes(
    store: DevicePairing, monkeypatch: pytest.MonkeyPatch
) -> None:
    request_id = check(store, auto_approve=False).request["requestId"]
    now_ms = 1_800_000_000_000
    monkeypatch.setattr(pairing.time, "time", lambda: now_ms / 1000)
    pending = on_disk(store, "pending.json")
    for age_ms, live in ((5 * 60 * 1000 - 1, True), (5 * 60 * 1000, False)):
        pending[request_id]["ts"] = now_ms - age_ms
        (store.directory / "pending.json").write_text(json.dumps(pending))
        assert (request_id in store.pending()) is live, age_ms
    assert store.approve(request_id) is None  # an expired request cannot be approved


def test_approval_is_scoped_and_merges_what_was_approved(store: DevicePairing) -> None:
    token = check(store, auto_approve=True).token
    assert token is not None
    wider = check(store, scopes=("operator.read", "operator.admin"), auto_approve=False)
    assert not wider.paired and wider.request["isRepair"] is True
    assert wider.request["scopes"] == ["operator.admin", "operator.read"]
    assert not check(store, role="node", scopes=(), auto_approve=False).paired
    impostor = check(store, key="other-key", auto_approve=False)  # claims the id, another key
    assert not impostor.paired
    assert check(store, scopes=(), auto_approve=False).paired  # fewer scopes: fine
    device = store.approve(wider.request["requestId"])
    assert device is not None
    assert device["scopes"] == ["operator.admin", "operator.read"]
    assert device["roles"] == ["operator"]
    assert device["tokens"]["operator"]["token"] != token["token"]  # a fresh token
    assert (
        device["tokens"]["operator"]["rotatedAtMs"] >= device["tokens"]["operator"]["createdAtMs"]
    )
    assert check(store, scopes=("operator.admin",), auto_approve=False).paired


def test_approve_and_reject_unknown_requests(store: DevicePairing) -> None:
    assert store.approve("nope") is None and store.reject("nope") is None
    request_id = check(store, auto_approve=False).request["requestId"]
    assert store.reject(request_id) == {"requestId": request_id, "deviceId": "d1"}
    assert store.pending() == {} and store.approve(request_id) is None


def test_listing_never_contains_a_token(store: DevicePairing) -> None:
    check(store, auto_approve=True)
    check(store, device="d2", key="k2", auto_approve=False)
    listing = store.listing()
    assert [r["deviceId"] for r in listing["pending"]] == ["d2"]
    (paired,) = listing["paired"]
    secret = on_disk(store, "paired.json")["d1"]["tokens"]["operator"]["token"]
    assert secret not in json.dumps(listing)
    assert paired["tokens"] == [
        {
            k: v
            for k, v in on_disk(store, "paired.json")["d1"]["tokens"]["operator"].items()
            if k != "token"
        }
    ]


def test_device_token_must_match_exactly_for_its_device_role_and_scopes(
    store: DevicePairing,
) -> None:
    token = check(store, auto_approve=True).token
    assert token is not None
    secret = token["token"]
    assert store.verify_token("d1", "operator", secret, ["operator.read"])
    assert "lastUsedAtMs" in on_disk(store, "paired.json")["d1"]["tokens"]["operator"]
    for wrong in near_misses(secret):
        assert not store.verify_token("d1", "operator", wrong, []), wrong
    assert not store.verify_token("d1", "node", secret, [])
    assert not store.verify_token("d2", "operator", secret, [])
    assert not store.verify_token("d1", "operator", "", [])
    assert not store.verify_token("d1", "operator", secret, ["operator.admin"])


def test_rotate_and_revoke(store: DevicePairing) -> None:
    old = check(store, auto_approve=True).token
    assert old is not None
    rotated = store.rotate("d1", "operator", ["operator.read", "operator.write"])
    assert rotated is not None and rotated["token"] != old["token"]
    assert rotated["scopes"] == ["operator.read", "operator.write"]
    assert on_disk(store, "paired.json")["d1"]["scopes"] == ["operator.read", "operator.write"]
    assert not store.verify_token("d1", "operator", old["token"], [])
    assert store.verify_token("d1", "operator", rotated["token"], ["operator.write"])
    assert store.rotate("nobody", "operator") is None
    revoked = store.revoke("d1", "operator")
    assert revoked is not None and revoked["revokedAtMs"] > 0
    assert not store.verify_token("d1", "operator", rotated["token"], [])
    assert store.revoke("d1", "node") is None and store.revoke("nobody", "operator") is None
    fresh = store.ensure_token("d1", "operator", ["operator.read"])
    assert fresh is not None and fresh["token"] != rotated["token"] and "revokedAtMs" not in fresh


def test_records_of_earlier_versions_are_read(store: DevicePairing) -> None:
    store.directory.mkdir(parents=True)
    (store.directory / "paired.json").write_text(
        json.dumps(
            {
                "d1": {
                    "deviceId": "d1",
                    "publicKey": "key1",
                    "roles": ["operator"],
                    "scopes": ["operator.read"],
                    "tokens": {"operator": "a" * 32},
                    "approvedAtMs": 5,
                }
            }
        )
    )
    assert store.verify_token("d1", "operator", "a" * 32, ["operator.read"])
    assert check(store, auto_approve=False).token == {
        "token": "a" * 32,
        "role": "operator",
        "scopes": ["operator.read"],
        "createdAtMs": 5,
        "lastUsedAtMs": on_disk(store, "paired.json")["d1"]["tokens"]["operator"]["lastUsedAtMs"],
    }


def test_unreadable_store_files_count_as_empty(store: DevicePairing) -> None:
    store.directory.mkdir(parents=True)
    (store.directory / "paired.json").write_text("{not json")
    (store.directory / "pending.json").write_text("[1, 2]")
    assert store.paired() == {} and store.pending() == {}
    assert not store.verify_token("x", "operator", "y", [])
