"""The per-client outbound queue on real sockets (an aiohttp server in this process):
replies that cannot be encoded, the fast write path and its fallback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway_harness import free_port_block
from moltbot.gateway import protocol
from moltbot.gateway.connection import Connection, fast_write_supported

Script = Callable[[Connection], Awaitable[None]]


@asynccontextmanager
async def serving(script: Script, *, fast_write: bool) -> AsyncIterator[tuple[str, dict]]:
    seen: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
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
        await script(conn)
        await conn.flush(2)
        await conn.finish()
        await ws.close()
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


async def frames_from(url: str) -> list[dict[str, Any]]:
    out = []
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
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
