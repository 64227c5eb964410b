"""The protocol client (gateway/client.py): calls, streams, events and typed errors,
against a real gateway, and against small peers that misbehave on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import WSMsgType, web

from gateway_harness import GatewayProcess, free_port_block
from moltbot.errors import (
    INVALID_REQUEST,
    NOT_PAIRED,
    AuthError,
    GatewayUnreachableError,
    MethodError,
    MoltbotError,
    PairingRequired,
)
from moltbot.gateway.client import Event, GatewayClient
from moltbot.gateway.sync_client import SyncGatewayClient


async def test_call_stream_and_events(gateway: GatewayProcess) -> None:
    async with GatewayClient(gateway.url, token=gateway.token) as client:
        assert (
            client.hello["type"] == "hello-ok" and "health" in client.hello["features"]["methods"]
        )
        assert client.connect_latency_ms > 0
        assert (await client.call("health"))["ok"] is True

        # an event stream, then a request whose broadcast it must carry
        events = client.events()
        waiting = asyncio.ensure_future(_presence_of(events, "t1"))
        await asyncio.sleep(0)  # the iterator subscribes on its first step
        assert await client.call("system-event", {"text": "hello", "instanceId": "t1"}) == {
            "ok": True
        }
        presence = await asyncio.wait_for(waiting, 10)
        assert isinstance(presence, Event) and presence.seq and presence.state_version
        await events.aclose()

        # `agent` answers twice; the stream yields the run's events, then the final answer
        stream = client.stream("agent", {"message": "hi", "idempotencyKey": "run-1"})
        seen = [event async for event in stream]
        assert stream.result["status"] == "ok" and stream.result["runId"] == "run-1"
        assert any(
            e.name == "agent"
            and e.payload["runId"] == "run-1"
            and e.payload["stream"] == "assistant"
            for e in seen
        )
        final = await client.call(
            "agent", {"message": "more", "idempotencyKey": "run-2"}, expect_final=True
        )
        assert final["status"] == "ok" and final["result"]["text"]


async def _presence_of(events: AsyncIterator[Event], instance_id: str) -> Event:
    async for event in events:
        if event.name == "presence" and any(
            entry.get("instanceId") == instance_id for entry in event.payload["presence"]
        ):
            return event
    raise AssertionError("the connection closed first")


async def test_errors_are_typed(gateway: GatewayProcess) -> None:
    async with GatewayClient(gateway.url, token=gateway.token) as client:
        with pytest.raises(MethodError) as caught:
            await client.call("nope.nope")
        assert caught.value.code == INVALID_REQUEST
        assert caught.value.reason == "unknown method: nope.nope"
        assert (
            caught.value.message == "nope.nope failed: INVALID_REQUEST: unknown method: nope.nope"
        )
        with pytest.raises(MethodError, match="invalid sessions.patch params"):
            await client.call("sessions.patch", {"key": "main", "bogus": 1})
        # the raw frame is there for callers that want it
        frame = await client.request("sessions.patch", {"key": "agent:BAD KEY:main"})
        assert frame["ok"] is False and frame["error"]["code"] == INVALID_REQUEST
        # the connection survives refused requests
        assert (await client.call("health"))["ok"] is True

    async with GatewayClient(gateway.url, token=gateway.token, scopes=["operator.read"]) as reader:
        with pytest.raises(MethodError, match="missing scope: operator.admin"):
            await reader.call("config.get")

    with pytest.raises(AuthError, match="refused the credentials: unauthorized") as refused:
        await GatewayClient(gateway.url, token=gateway.token + "x").connect()
    assert refused.value.exit_code == 7
    with pytest.raises(AuthError, match="no token or password was given") as bare:
        await GatewayClient(gateway.url).connect()  # no secret and no device: refused
    assert bare.value.hint and "--token" in bare.value.hint

    port = free_port_block(1)
    with pytest.raises(GatewayUnreachableError, match="connection refused") as down:
        await GatewayClient(f"ws://127.0.0.1:{port}", token="t").connect()
    assert down.value.exit_code == 6
    with pytest.raises(MoltbotError, match="not connected"):
        await GatewayClient(gateway.url).call("health")


async def test_a_closing_gateway_ends_streams_and_fails_later_calls(
    gateway: GatewayProcess,
) -> None:
    client = GatewayClient(gateway.url, token=gateway.token)
    await client.connect()
    try:
        events = [event async for event in _until_closed(client, gateway)]
        assert [e.name for e in events if e.name == "shutdown"] == ["shutdown"]
        with pytest.raises(GatewayUnreachableError, match="1012"):
            await client.call("health")
    finally:
        await client.close()
    assert gateway.proc.wait(10) == 0


async def _until_closed(client: GatewayClient, gateway: GatewayProcess) -> AsyncIterator[Event]:
    events = client.events()
    first = asyncio.ensure_future(anext(events))
    await client.call("health")  # barrier: the iterator is subscribed by now
    gateway.signal(signal.SIGTERM)
    yield await asyncio.wait_for(first, 10)
    async for event in events:
        yield event


def test_sync_facade(gateway: GatewayProcess) -> None:
    with SyncGatewayClient(gateway.url, token=gateway.token, timeout=10) as client:
        assert client.connect_latency_ms > 0 and client.hello["type"] == "hello-ok"
        assert client.call("status")["instance"]["pid"] == gateway.pid
        with pytest.raises(MethodError, match="unknown method"):
            client.call("nope")
        assert client.call("health")["ok"] is True
    with pytest.raises(AuthError):
        SyncGatewayClient(gateway.url, token="wrong").connect()


async def test_the_connection_is_direct_whatever_the_proxy_variables(
    gateway: GatewayProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{free_port_block(1)}"
    for name in ("http_proxy", "https_proxy", "all_proxy", "ws_proxy"):
        monkeypatch.setenv(name, dead)
        monkeypatch.setenv(name.upper(), dead)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    async with GatewayClient(gateway.url, token=gateway.token) as client:
        assert (await client.call("health"))["ok"] is True


# Peers that misbehave on purpose -------------------------------------------------------

Peer = Callable[[web.WebSocketResponse], Awaitable[None]]


@contextlib.asynccontextmanager
async def peer(behaviour: Peer) -> AsyncIterator[str]:
    async def endpoint(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await behaviour(ws)
        return ws

    app = web.Application()
    app.router.add_get("/", endpoint)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port_block(1)
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def handshake(ws: web.WebSocketResponse) -> None:
    """Challenge, then accept any connect."""
    await ws.send_json({"type": "event", "event": "connect.challenge", "payload": {"nonce": "n"}})
    connect = await ws.receive_json()
    await ws.send_json({"type": "res", "id": connect["id"], "ok": True, "payload": {"p": 1}})


async def test_a_peer_that_never_answers_times_out() -> None:
    async def answers_only_ping(ws: web.WebSocketResponse) -> None:
        await handshake(ws)
        received = []
        async for message in ws:
            request = json.loads(message.data)
            received.append(request["method"])
            if request["method"] == "ping":  # the barrier: what came before it
                await ws.send_json(
                    {"type": "res", "id": request["id"], "ok": True, "payload": received}
                )

    async with peer(answers_only_ping) as url, GatewayClient(url, timeout=0.2) as client:
        assert client.hello == {"p": 1}
        with pytest.raises(GatewayUnreachableError, match="did not answer in time"):
            await client.call("health")
        await client.notify("chat.abort", {"sessionKey": "main"})
        assert await client.call("ping", timeout=10) == ["health", "chat.abort", "ping"]


async def test_interim_answers_and_events_of_a_stream() -> None:
    async def two_stage(ws: web.WebSocketResponse) -> None:
        await handshake(ws)
        async for message in ws:
            request = json.loads(message.data)
            if request["method"] == "ping":
                await ws.send_json({"type": "res", "id": request["id"], "ok": True})
                continue
            rid, run = request["id"], request["params"]["run"]
            accepted = {"runId": run, "status": "accepted"}
            await ws.send_json({"type": "res", "id": rid, "ok": True, "payload": accepted})
            for seq in (1, 2):
                event = {"runId": run, "seq": seq}
                await ws.send_json({"type": "event", "event": "agent", "payload": event})
            final = {"runId": run, "status": "ok"}
            await ws.send_json({"type": "res", "id": rid, "ok": True, "payload": final})

    async with peer(two_stage) as url, GatewayClient(url) as client:
        first = await client.call("agent", {"run": "a"})
        assert first == {"runId": "a", "status": "accepted"}
        await client.call("ping")  # barrier: run a's events and final answer are read by now
        stream = client.stream("agent", {"run": "b"})
        seen = [(e.name, e.payload["runId"], e.payload["seq"]) async for e in stream]
        assert seen == [("agent", "b", 1), ("agent", "b", 2)]
        assert stream.result == {"runId": "b", "status": "ok"}
        assert await client.call("agent", {"run": "c"}, expect_final=True) == {
            "runId": "c",
            "status": "ok",
        }


async def test_a_peer_that_closes_mid_call_fails_the_call() -> None:
    async def closes(ws: web.WebSocketResponse) -> None:
        await handshake(ws)
        await ws.receive()  # the request: close instead of answering
        await ws.close(code=1012, message=b"service restart")

    async with peer(closes) as url, GatewayClient(url, timeout=None) as client:
        with pytest.raises(GatewayUnreachableError, match=r"1012: service restart"):
            await client.call("health")


async def test_a_peer_that_is_not_a_gateway_is_named() -> None:
    async def chatty(ws: web.WebSocketResponse) -> None:
        await ws.send_str("hello, I am an echo server")
        await ws.receive()

    async with peer(chatty) as url:
        with pytest.raises(MoltbotError, match="does not speak the gateway protocol"):
            await GatewayClient(url).connect()


async def test_pairing_and_other_refusals_are_told_apart() -> None:
    async def refuses(ws: web.WebSocketResponse) -> None:
        await ws.send_json({"type": "event", "event": "connect.challenge", "payload": {}})
        connect = await ws.receive_json()
        error = {"code": NOT_PAIRED, "message": "pairing required", "details": {"requestId": "q"}}
        await ws.send_json({"type": "res", "id": connect["id"], "ok": False, "error": error})
        await ws.close(code=1008, message=b"pairing required")

    async with peer(refuses) as url:
        with pytest.raises(PairingRequired, match="requires pairing") as caught:
            await GatewayClient(url, token="t").connect()
    assert caught.value.details == {"requestId": "q"} and caught.value.exit_code == 7

    async def mismatched(ws: web.WebSocketResponse) -> None:
        await ws.send_json({"type": "event", "event": "connect.challenge", "payload": {}})
        connect = await ws.receive_json()
        error = {"code": INVALID_REQUEST, "message": "protocol mismatch"}
        await ws.send_json({"type": "res", "id": connect["id"], "ok": False, "error": error})
        while (await ws.receive()).type not in (WSMsgType.CLOSE, WSMsgType.CLOSED):
            pass

    async with peer(mismatched) as url:
        with pytest.raises(MethodError, match="refused the connection: protocol mismatch"):
            await GatewayClient(url, token="t").connect()


async def test_a_frame_nested_too_deep_to_parse_is_skipped() -> None:
    """JSON nested deeper than the parser's recursion limit is skipped as any other
    non-object: the reader goes on and the call gets its answer."""

    async def deep_then_answer(ws: web.WebSocketResponse) -> None:
        await handshake(ws)
        async for message in ws:
            request = json.loads(message.data)
            await ws.send_str('{"type": "res", "payload": ' + "[" * 100_000)
            await ws.send_json({"type": "res", "id": request["id"], "ok": True, "payload": 1})

    async with peer(deep_then_answer) as url, GatewayClient(url, timeout=10) as client:
        assert await client.call("health") == 1


async def test_neither_client_follows_a_redirect() -> None:
    """The connect frame carries the token: it goes only to the URL the user gave. A
    redirect (to another port, here a gateway-like peer) fails the connection in both
    clients, which never reach its target."""
    reached: list[str] = []

    async def records(ws: web.WebSocketResponse) -> None:
        reached.append("connected")
        await ws.close()

    async with peer(records) as target:

        async def moved(request: web.Request) -> web.Response:
            raise web.HTTPFound(target)

        app = web.Application()
        app.router.add_get("/", moved)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port_block(1)
        await web.TCPSite(runner, "127.0.0.1", port).start()
        url = f"ws://127.0.0.1:{port}"
        try:
            with pytest.raises(GatewayUnreachableError, match="302"):
                await GatewayClient(url, token="t", timeout=5).connect()
            with pytest.raises(GatewayUnreachableError, match="302"):
                await asyncio.to_thread(SyncGatewayClient(url, token="t", timeout=5).connect)
        finally:
            await runner.cleanup()
    assert reached == []
