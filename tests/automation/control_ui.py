"""Upstream's Control UI build served for a browser test, the way the gateway would
serve it: one origin for the page and its WebSocket. The page comes from
``dist/control-ui``; ``/ws`` is relayed to the gateway under the gateway's own
``Origin`` (a same-origin Control UI is a local client there)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway_harness import free_port_block


@contextlib.asynccontextmanager
async def serve_control_ui(ui_dir: Path, gateway_port: int) -> AsyncIterator[str]:
    """Serve ``ui_dir`` (single-page app) and relay ``/ws``; yields the base URL."""
    root = ui_dir.resolve()
    relays: set[asyncio.Task[None]] = set()

    async def relay(request: web.Request) -> web.StreamResponse:
        browser = web.WebSocketResponse(max_msg_size=0)
        await browser.prepare(request)
        origin = f"http://127.0.0.1:{gateway_port}"
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                f"ws://127.0.0.1:{gateway_port}", headers={"Origin": origin}, max_msg_size=0
            ) as upstream,
        ):

            async def pump(source: object, sink: object) -> None:
                async for message in source:  # type: ignore[attr-defined]
                    if message.type == aiohttp.WSMsgType.TEXT:
                        await sink.send_str(message.data)  # type: ignore[attr-defined]
                    else:
                        break
                await sink.close()  # type: ignore[attr-defined]

            task = asyncio.ensure_future(
                asyncio.gather(pump(browser, upstream), pump(upstream, browser))
            )
            relays.add(task)
            with contextlib.suppress(Exception):
                await task
            relays.discard(task)
        return browser

    async def page(request: web.Request) -> web.StreamResponse:
        target = (root / request.match_info["tail"]).resolve()
        if target.is_file() and target.is_relative_to(root):
            return web.FileResponse(target)
        return web.FileResponse(root / "index.html")

    app = web.Application()
    app.router.add_get("/ws", relay)
    app.router.add_get("/{tail:.*}", page)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    port = free_port_block(1)
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for task in relays:
            task.cancel()
        await runner.cleanup()
