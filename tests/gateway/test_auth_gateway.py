"""Credentials that are almost right, against a real gateway.

Every wrong secret here differs from the right one by one character or only
after the 8th: a comparison by prefix, by length or by the first characters
would let it in. Each test also shows the right secret getting in, so a refusal
is never an accident of the set-up.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway_harness import (
    CORE_ONLY,
    ConnectRefused,
    GatewayProcess,
    connect_params,
    near_misses,
    start_gateway,
    ws_client,
)

PASSWORD = "correct-horse-battery-staple-42"


def write_config(home: Path, auth: dict[str, Any]) -> None:
    state = home / ".clawdbot-main"
    state.mkdir(parents=True, exist_ok=True)
    config = {
        "gateway": {
            "mode": "local",
            "auth": {"token": secrets.token_hex(16), **auth},
            "http": {"endpoints": {"chatCompletions": {"enabled": True}}},
        }
    }
    (state / "moltbot.json").write_text(json.dumps(config))


@pytest.fixture
def gateway(home: Path) -> Any:
    started: list[GatewayProcess] = []

    def start(**auth: Any) -> GatewayProcess:
        write_config(home, auth)
        gw = start_gateway(home, "main", env=CORE_ONLY)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


async def refusal(url: str, params: dict[str, Any], **headers: str) -> dict[str, Any] | None:
    """The error a connect gets, or ``None`` when it is accepted. A refusal at the HTTP
    upgrade (a guard in front of the handshake) counts as ``{"http": status}``."""
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(url, headers=headers or None)
        except aiohttp.WSServerHandshakeError as exc:
            return {"http": exc.status}
        async with ws:
            challenge = await ws.receive_json(timeout=10)
            build = params.get("build")
            if build is not None:
                params = build(challenge["payload"]["nonce"])
            await ws.send_json({"type": "req", "id": "c", "method": "connect", "params": params})
            reply = await ws.receive_json(timeout=10)
            return None if reply["ok"] else reply["error"]


async def chat_status(gw: GatewayProcess, secret: str) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{gw.http}/v1/chat/completions",
            headers={"Authorization": f"Bearer {secret}"},
            json={"model": "moltbot", "messages": [{"role": "system", "content": "x"}]},
        ) as response:
            return response.status


async def test_token_near_misses_are_refused(gateway: Any) -> None:
    gw = gateway()
    for wrong in near_misses(gw.token):
        error = await refusal(gw.url, connect_params(wrong))
        assert error is not None, wrong
        assert "unauthorized: gateway token mismatch" in error["message"], wrong
        assert await chat_status(gw, wrong) == 401, wrong
    assert await refusal(gw.url, connect_params(gw.token)) is None
    assert await chat_status(gw, gw.token) != 401


async def test_password_near_misses_are_refused(gateway: Any) -> None:
    gw = gateway(mode="password", password=PASSWORD)
    for wrong in near_misses(PASSWORD):
        error = await refusal(gw.url, connect_params(auth={"password": wrong}))
        assert error is not None, wrong
        assert "unauthorized: gateway password mismatch" in error["message"], wrong
        assert await chat_status(gw, wrong) == 401, wrong
    # In password mode the token of the config is no way in.
    error = await refusal(gw.url, connect_params(gw.token))
    assert error is not None and "unauthorized" in error["message"]
    assert await chat_status(gw, gw.token) == 401
    assert await refusal(gw.url, connect_params(auth={"password": PASSWORD})) is None
    assert await chat_status(gw, PASSWORD) != 401


class Device:
    """An Ed25519 device identity that signs connects the way upstream clients do."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.key = Ed25519PrivateKey.generate()
        self.raw = self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.id = hashlib.sha256(self.raw).hexdigest()

    def params(self, token: str, nonce: str, scopes: tuple[str, ...] = ("operator.read",)):
        signed_at = int(time.time() * 1000)
        scope_text = ",".join(scopes)
        parts = ["v2", self.id, "test", "test", "operator", scope_text, str(signed_at), token]
        signature = self.key.sign("|".join([*parts, nonce]).encode())
        device = {
            "id": self.id,
            "publicKey": b64(self.raw),
            "signature": b64(signature),
            "signedAt": signed_at,
            "nonce": nonce,
        }
        return connect_params(token, scopes=list(scopes), device=device)

    def build(self, token: str) -> dict[str, Any]:
        return {"build": lambda nonce: self.params(token, nonce)}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def paired_ids(gw: GatewayProcess) -> set[str]:
    path = gw.state_dir / "devices" / "paired.json"
    return set(json.loads(path.read_text())) if path.exists() else set()


async def test_paired_device_with_a_wrong_device_token_is_refused(gateway: Any) -> None:
    gw = gateway()
    device = Device()
    async with aiohttp.ClientSession() as session, session.ws_connect(gw.url) as ws:
        challenge = await ws.receive_json(timeout=10)
        params = device.params(gw.token, challenge["payload"]["nonce"])
        await ws.send_json({"type": "req", "id": "c", "method": "connect", "params": params})
        hello = await ws.receive_json(timeout=10)
    assert hello["ok"], hello
    device_token = hello["payload"]["auth"]["deviceToken"]
    assert device.id in paired_ids(gw)

    # The device token alone (no shared token) gets the paired device in ...
    assert await refusal(gw.url, device.build(device_token)) is None
    # ... and nothing merely close to it does.
    for wrong in [*near_misses(device_token), secrets.token_hex(16)]:
        error = await refusal(gw.url, device.build(wrong))
        assert error is not None, wrong
        assert "unauthorized" in error["message"], wrong
    # A device token is bound to its device: another device cannot present it.
    error = await refusal(gw.url, Device().build(device_token))
    assert error is not None and "unauthorized" in error["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "192.0.2.10"},
        {"X-Real-IP": "192.0.2.10"},
        {"X-Forwarded-Host": "gateway.example"},
        {"Forwarded": "for=192.0.2.10;proto=https"},
        {"Host": "gateway.example"},
        {"Host": "127.0.0.1.gateway.example"},
    ],
    ids=["x-forwarded-for", "x-real-ip", "x-forwarded-host", "forwarded", "host", "host-prefix"],
)
async def test_proxied_or_foreign_host_device_is_not_auto_approved(
    gateway: Any, headers: dict[str, str]
) -> None:
    """From loopback but through a proxy (or a rebound DNS name), a new device with the
    right token still needs an operator's approval: it is not local."""
    gw = gateway()
    device = Device()
    error = await refusal(gw.url, device.build(gw.token), **headers)
    assert error is not None
    if "http" not in error:  # a Host guard in front of the handshake may refuse earlier
        assert error["code"] == "NOT_PAIRED" and error["message"] == "pairing required"
        pending = json.loads((gw.state_dir / "devices" / "pending.json").read_text())
        assert [p["deviceId"] for p in pending.values()] == [device.id]
    assert device.id not in paired_ids(gw)
    # The same device straight from loopback is approved: the headers alone made the difference.
    assert await refusal(gw.url, device.build(gw.token)) is None
    assert device.id in paired_ids(gw)


async def test_wrong_token_is_refused_for_a_device_too(gateway: Any) -> None:
    """A signed device proves who it is, not that it may connect: a new device still
    needs the gateway token, and nothing close to it."""
    gw = gateway()
    for wrong in near_misses(gw.token):
        device = Device()
        error = await refusal(gw.url, device.build(wrong))
        assert error is not None and "unauthorized" in error["message"], wrong
        assert device.id not in paired_ids(gw)
    with pytest.raises(ConnectRefused):
        async with ws_client(gw.url, gw.token[:-1]):
            pass
