"""The per-client outbound queue on real sockets (an aiohttp server in this process):
replies that cannot be encoded, the fast write path and its fallback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp._websocket.writer import WebSocketWriter

from gateway_harness import free_port_block
from moltbot.gateway import protocol
from moltbot.gateway.connection import Connection, _frame_writer_fits, fast_write_supported

Script = Callable[[Connection], Awaitable[None]]


@asynccontextmanager
async def serving(
    script: Script, *, fast_write: bool, compress: bool = False
) -> AsyncIterator[tuple[str, dict]]:
    seen: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=compress)
        await ws.prepare(request)
        conn = Connection(
            ws,
            remote=request.remote,
            local=True,
            transport=request.transport,
            fast_write=fast_write,
        )
        seen["fast"] = conn.fast_write
        seen["supported"] = fast_write_supported(ws)
        try:
            await script(conn)
            await conn.flush(2)
            await conn.finish()
            await ws.close()
        finally:
            seen["done"] = True
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port_block(1)
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"ws://127.0.0.1:{port}/", seen
    finally:
        await runner.cleanup()


async def frames_from(url: str, *, compress: int = 0) -> list[dict[str, Any]]:
    out = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url, compress=compress) as ws:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                out.append(message.json())
    return out


@pytest.mark.parametrize("fast_write", [True, False])
async def test_frames_arrive_in_order_with_and_without_the_fast_path(fast_write: bool) -> None:
    async def script(conn: Connection) -> None:
        for i in range(500):
            conn.send(protocol.response(f"r{i}", {"n": i, "pad": "x" * (i * 10)}))

    async with serving(script, fast_write=fast_write) as (url, seen):
        frames = await frames_from(url)
    assert [f["id"] for f in frames] == [f"r{i}" for i in range(500)]
    assert seen["supported"]  # this aiohttp still has the frame writer the fast path uses
    assert seen["fast"] is fast_write


async def test_a_reply_that_cannot_be_encoded_becomes_an_error_frame() -> None:
    async def script(conn: Connection) -> None:
        conn.send(protocol.response("a", {"big": 2**70}))
        conn.send(protocol.response("b", {object(): 1}))
        conn.send(protocol.response("c", {"fine": True}))

    async with serving(script, fast_write=True) as (url, _):
        frames = await frames_from(url)
    assert [f["id"] for f in frames] == ["a", "b", "c"]
    for frame in frames[:2]:
        assert not frame["ok"] and frame["error"]["code"] == "UNAVAILABLE"
        assert "could not be encoded" in frame["error"]["message"]
    assert frames[2]["ok"]


async def test_a_compressed_socket_takes_the_queue() -> None:
    """The fast path writes uncompressed frames only: on a socket that negotiated
    permessage-deflate the probe says no, and every frame goes through the queue."""

    async def script(conn: Connection) -> None:
        for i in range(200):
            conn.send(protocol.response(f"r{i}", {"n": i, "pad": "x" * (i * 10)}))

    async with serving(script, fast_write=True, compress=True) as (url, seen):
        frames = await frames_from(url, compress=15)
    assert seen["supported"] is False and seen["fast"] is False
    assert [f["id"] for f in frames] == [f"r{i}" for i in range(200)]


def test_the_probe_needs_a_prepared_socket_and_the_frame_writer() -> None:
    assert fast_write_supported(web.WebSocketResponse()) is False  # not prepared: no writer
    assert _frame_writer_fits(WebSocketWriter) is True  # this aiohttp's writer fits

    class Other:  # a writer without the private method (another aiohttp)
        async def send_frame(self, message: bytes, opcode: int) -> None: ...

    assert _frame_writer_fits(Other) is False


@pytest.mark.parametrize("fast_write", [True, False])
async def test_a_peer_gone_without_a_close_never_makes_sending_fail(fast_write: bool) -> None:
    """The client's TCP connection is cut while the server has not read anything yet
    (``ws.closed`` is still false): an answer or a broadcast to it must neither raise
    (a broadcast loop would stop at the dead client) nor stay queued."""
    outcome: dict[str, Any] = {}

    async def script(conn: Connection) -> None:
        transport = conn.transport
        assert transport is not None
        await outcome["cut"].wait()
        while not transport.is_closing():
            await asyncio.sleep(0.01)
        assert not conn.ws.closed  # the reader has not noticed: the window of the bug
        outcome["send"] = conn.send(protocol.response("late", {"n": 1}))
        outcome["event"] = conn.enqueue_event(b'{"type":"event","event":"tick"}')
        await conn.flush(10)  # the writer finds the peer gone and lets the queue go
        outcome["open"] = conn.open
        outcome["backlogged"] = conn.backlogged

    outcome["cut"] = asyncio.Event()
    async with serving(script, fast_write=fast_write) as (url, seen):
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(url)
            assert ws._response is not None and ws._response.connection is not None
            ws._response.connection.transport.abort()  # no close frame, just gone
            outcome["cut"].set()
            await ws.close()
        await asyncio.wait_for(_finished(seen), 10)
    assert seen["fast"] is fast_write
    assert outcome["send"] is True and outcome["event"] is True
    assert outcome["open"] is False and outcome["backlogged"] is False


async def _finished(seen: dict[str, Any]) -> None:
    while "done" not in seen:
        await asyncio.sleep(0.01)
