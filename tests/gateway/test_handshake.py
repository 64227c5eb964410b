"""The connect handshake over real sockets against a gateway subprocess."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest

from gateway_harness import (
    ConnectRefused,
    connect_params,
    signed_connect_params,
    start_gateway,
    ws_client,
)


async def raw_session(url: str) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(url, max_msg_size=0)
    return session, ws


async def first_frames(
    url: str, frame: Any, *, raw: str | None = None
) -> tuple[dict[str, Any], list[Any], Any]:
    """Send one first frame; return the challenge, what came back, and the close code."""
    session, ws = await raw_session(url)
    try:
        challenge = await ws.receive_json(timeout=5)
        if raw is not None:
            await ws.send_str(raw)
        else:
            await ws.send_json(frame)
        replies = []
        while True:
            message = await ws.receive(timeout=5)
            if message.type == aiohttp.WSMsgType.TEXT:
                replies.append(json.loads(message.data))
                continue
            break
        return challenge, replies, ws.close_code
    finally:
        await ws.close()
        await session.close()


async def test_hello_ok_describes_the_gateway(gateway) -> None:
    async with ws_client(gateway.url, gateway.token) as client:
        hello = client.hello
    assert hello["type"] == "hello-ok" and hello["protocol"] == 3
    assert {
        "health",
        "status",
        "system-presence",
        "system-event",
        "logs.tail",
        "config.get",
        "config.set",
        "config.patch",
        "config.apply",
        "config.schema",
    } <= set(hello["features"]["methods"])
    assert {"tick", "presence", "health", "shutdown", "agent", "chat"} <= set(
        hello["features"]["events"]
    )
    assert hello["policy"] == {
        "maxPayload": 524288,
        "maxBufferedBytes": 1572864,
        "tickIntervalMs": 30000,
    }
    snapshot = hello["snapshot"]
    assert {"presence", "health", "stateVersion", "uptimeMs"} <= set(snapshot)
    assert snapshot["stateDir"] == str(gateway.state_dir)
    assert hello["server"]["connId"]
    assert client.challenge["nonce"] and isinstance(client.challenge["ts"], int)
    assert abs(client.challenge["ts"] - time.time() * 1000) < 3_600_000  # milliseconds


async def test_wrong_token_is_refused_with_1008(gateway) -> None:
    _, replies, code = await first_frames(
        gateway.url,
        {"type": "req", "id": "c1", "method": "connect", "params": connect_params("nope")},
    )
    assert replies[0]["ok"] is False
    assert replies[0]["error"]["code"] == "INVALID_REQUEST"
    assert "unauthorized: gateway token mismatch" in replies[0]["error"]["message"]
    assert code == 1008


async def test_no_token_and_no_device_is_refused(gateway) -> None:
    _, replies, code = await first_frames(
        gateway.url,
        {"type": "req", "id": "c1", "method": "connect", "params": connect_params(None)},
    )
    assert replies[0]["error"] == {"code": "NOT_PAIRED", "message": "device identity required"}
    assert code == 1008


async def test_protocol_mismatch_closes_1002(gateway) -> None:
    params = connect_params(gateway.token, minProtocol=4, maxProtocol=5)
    _, replies, code = await first_frames(
        gateway.url, {"type": "req", "id": "c1", "method": "connect", "params": params}
    )
    assert replies[0]["error"]["message"] == "protocol mismatch"
    assert replies[0]["error"]["details"] == {"expectedProtocol": 3}
    assert code == 1002


async def no_traceback_after(gateway) -> None:
    """A full request on a new connection is the barrier: whatever the gateway logged
    about the connection before it has been written by then."""
    async with ws_client(gateway.url, gateway.token) as client:
        await client.call("health")
    assert "Traceback" not in gateway.output()


async def test_non_json_first_frame_closes_without_answer(gateway) -> None:
    _, replies, code = await first_frames(gateway.url, None, raw="this is not json")
    assert replies == [] and code == 1000
    await no_traceback_after(gateway)


@pytest.mark.parametrize(
    "frame",
    [
        {"hello": "world"},
        ["req"],
        {"type": "event", "id": "c1", "method": "connect"},
        {"type": "req", "id": 7, "method": "connect"},
        {"type": "req", "id": "", "method": "connect"},
        {"type": "req", "id": "c1", "method": 5},
        {"type": "req", "id": "c1", "method": ""},
        {"type": "req", "id": "c1"},
    ],
)
async def test_non_request_first_frame_closes_1008(gateway, frame) -> None:
    _, replies, code = await first_frames(gateway.url, frame)
    assert replies == [] and code == 1008
    await no_traceback_after(gateway)


async def test_first_request_must_be_connect(gateway) -> None:
    _, replies, code = await first_frames(
        gateway.url, {"type": "req", "id": "x", "method": "health"}
    )
    assert replies[0]["error"]["message"] == "invalid handshake: first request must be connect"
    assert code == 1008


async def test_unknown_connect_field_is_rejected(gateway) -> None:
    params = connect_params(gateway.token, surprise=True)
    _, replies, code = await first_frames(
        gateway.url, {"type": "req", "id": "c1", "method": "connect", "params": params}
    )
    message = replies[0]["error"]["message"]
    assert (
        message.startswith("invalid connect params:")
        and "unexpected property 'surprise'" in message
    )
    assert code == 1008


async def test_invalid_client_id_is_rejected(gateway) -> None:
    params = connect_params(gateway.token, client_id="not-a-client")
    _, replies, code = await first_frames(
        gateway.url, {"type": "req", "id": "c1", "method": "connect", "params": params}
    )
    assert "invalid connect params" in replies[0]["error"]["message"] and code == 1008


async def test_oversized_frame_closes_1009(gateway) -> None:
    async with ws_client(gateway.url, gateway.token) as client:
        await client.ws.send_str(
            json.dumps(
                {
                    "type": "req",
                    "id": "big",
                    "method": "health",
                    "params": {"pad": "x" * (600 * 1024)},
                }
            )
        )
        await client.closed.wait()
        assert client.ws.close_code == 1009


def test_handshake_timeout_closes(home) -> None:
    import asyncio

    gw = start_gateway(home, "slow", env={"CLAWDBOT_HANDSHAKE_TIMEOUT_MS": "300"})
    try:

        async def scenario() -> Any:
            session, ws = await raw_session(gw.url)
            try:
                await ws.receive_json(timeout=5)
                started = time.monotonic()
                message = await ws.receive(timeout=5)
                return message.type, ws.close_code, time.monotonic() - started
            finally:
                await ws.close()
                await session.close()

        kind, code, waited = asyncio.run(scenario())
        assert kind == aiohttp.WSMsgType.CLOSE and code == 1000 and waited < 3
    finally:
        gw.stop()


async def _connect_with(url: str, build: Any) -> tuple[dict[str, Any], Any]:
    session, ws = await raw_session(url)
    try:
        challenge = await ws.receive_json(timeout=5)
        await ws.send_json(
            {
                "type": "req",
                "id": "c",
                "method": "connect",
                "params": build(challenge["payload"]["nonce"]),
            }
        )
        reply = await ws.receive_json(timeout=5)
        return reply, ws
    finally:
        await ws.close()
        await session.close()


async def test_signed_device_is_verified_and_auto_approved_locally(gateway) -> None:
    reply, _ = await _connect_with(
        gateway.url, lambda nonce: signed_connect_params(gateway.token, nonce)
    )
    assert reply["ok"], reply
    auth = reply["payload"]["auth"]
    assert len(auth["deviceToken"]) == 32 and auth["scopes"] == ["operator.read"]
    paired = json.loads((gateway.state_dir / "devices" / "paired.json").read_text())
    assert len(paired) == 1


async def test_tampered_signature_is_refused(gateway) -> None:
    reply, _ = await _connect_with(
        gateway.url, lambda nonce: signed_connect_params(gateway.token, nonce, tamper=True)
    )
    assert reply["error"]["message"] == "device signature invalid"


async def test_wrong_nonce_is_refused(gateway) -> None:
    reply, _ = await _connect_with(
        gateway.url, lambda nonce: signed_connect_params(gateway.token, "0" * 32)
    )
    assert reply["error"]["message"] == "device nonce mismatch"


async def test_no_scopes_means_admin_for_an_operator(gateway) -> None:
    async with ws_client(gateway.url, gateway.token) as client:
        assert (await client.call("config.get"))["exists"] is True


@pytest.mark.parametrize(
    "mode,hint", [("webchat", "tokenized dashboard URL"), ("cli", "pass --token")]
)
async def test_refusal_hint_fits_the_client(gateway, mode, hint) -> None:
    params = connect_params("wrong", client_id="cli" if mode == "cli" else "webchat", mode=mode)
    _, replies, _ = await first_frames(
        gateway.url, {"type": "req", "id": "c1", "method": "connect", "params": params}
    )
    assert hint in replies[0]["error"]["message"]


async def test_pairing_events_reach_operators(gateway) -> None:
    """A new local device is approved and announced once; a device that is not local
    is announced as a pairing request, with the details an operator decides on."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    async with ws_client(gateway.url, gateway.token) as operator:
        reply, _ = await _connect_with(
            gateway.url, lambda nonce: signed_connect_params(gateway.token, nonce, key=key)
        )
        assert reply["ok"]
        [device_id] = json.loads((gateway.state_dir / "devices" / "paired.json").read_text())
        resolved = await operator.wait_event(lambda f: f["event"] == "device.pair.resolved")
        assert resolved["payload"]["deviceId"] == device_id
        assert resolved["payload"]["decision"] == "approved"
        assert abs(resolved["payload"]["ts"] - time.time() * 1000) < 3_600_000  # milliseconds
        # The same device again: nothing new to announce (the health call is the barrier).
        again, _ = await _connect_with(
            gateway.url, lambda nonce: signed_connect_params(gateway.token, nonce, key=key)
        )
        assert again["ok"]
        await operator.call("health")
        assert [f["event"] for f in operator.events].count("device.pair.resolved") == 1

        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(gateway.url, headers={"X-Forwarded-For": "192.0.2.9"})
            challenge = await ws.receive_json(timeout=5)
            params = signed_connect_params(gateway.token, challenge["payload"]["nonce"])
            await ws.send_json({"type": "req", "id": "c", "method": "connect", "params": params})
            refused = await ws.receive_json(timeout=5)
            await ws.close()
        finally:
            await session.close()
        assert refused["error"]["code"] == "NOT_PAIRED"
        requested = await operator.wait_event(lambda f: f["event"] == "device.pair.requested")
    payload = requested["payload"]
    assert payload["requestId"] == refused["error"]["details"]["requestId"]
    assert payload["deviceId"] == params["device"]["id"]
    assert payload["role"] == "operator" and payload["scopes"] == ["operator.read"]
    assert payload["remoteIp"] == "127.0.0.1"
    assert abs(payload["ts"] - time.time() * 1000) < 3_600_000  # milliseconds


async def test_read_scope_limits_methods(gateway) -> None:
    async with ws_client(gateway.url, gateway.token, scopes=["operator.read"]) as client:
        assert (await client.call("health"))["ok"] is True
        denied = await client.request("config.get")
        assert denied["error"] == {
            "code": "INVALID_REQUEST",
            "message": "missing scope: operator.admin",
        }
        unknown = await client.request("no.such.method")
        assert unknown["error"]["message"] == "missing scope: operator.admin"


async def test_refused_connect_raises(gateway) -> None:
    with pytest.raises(ConnectRefused):
        async with ws_client(gateway.url, "wrong"):
            pass
