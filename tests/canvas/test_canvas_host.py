"""The canvas host over real HTTP: mounts, injection, refusals, live reload, exposure."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import aiohttp
import pytest
from browser_helpers import make_instance

from gateway_harness import near_misses
from moltbot.canvas import livereload
from moltbot.errors import PortInUseError
from moltbot.lifecycle import State

PAGE = "<!doctype html><html><body><h1>Hello</h1></body></html>"


def raw_get(port: int, path: str, host: str | None = None, connect: str = "127.0.0.1") -> str:
    """Send ``path`` byte for byte (no client-side normalisation of ``..``)."""
    with socket.create_connection((connect, port), timeout=5) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.decode("utf-8", errors="replace")


def status_of(response: str) -> int:
    return int(response.split(" ", 2)[1])


async def get(url: str, **kwargs) -> tuple[int, str, aiohttp.typedefs.LooseHeaders]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url, allow_redirects=False, **kwargs) as response:
            return response.status, await response.text(), response.headers


async def test_serves_root_under_both_mounts_with_live_reload_script(
    home: Path, canvas_host
) -> None:
    made = make_instance(home, "main")
    host = await canvas_host(made)
    assert host.state == State.RUNNING
    root = made.instance.canvas_root
    assert host.port == made.instance.canvas_port == made.instance.port + 4
    assert (root / "index.html").exists()  # the welcome page for an empty folder
    (root / "index.html").write_text(PAGE)
    (root / "app.js").write_text("console.log('hi')")
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_text("<p>sub</p>")

    base = f"http://127.0.0.1:{host.port}"
    status, text, headers = await get(f"{base}/__moltbot__/canvas/")
    assert status == 200 and "<h1>Hello</h1>" in text
    assert livereload.MARKER in text and '"/__moltbot__/ws"' in text
    assert text.index(livereload.MARKER) < text.index("</body>")
    assert headers["Cache-Control"] == "no-store"
    status, text, _ = await get(f"{base}/__openclaw__/canvas/index.html")
    assert status == 200 and '"/__openclaw__/ws"' in text
    assert "openclawSendUserAction" in text
    status, text, headers = await get(f"{base}/__moltbot__/canvas/app.js")
    assert status == 200 and text == "console.log('hi')"
    assert livereload.MARKER not in text
    assert headers["Content-Type"].startswith(("application/javascript", "text/javascript"))
    status, text, _ = await get(f"{base}/__moltbot__/canvas/sub")
    assert status == 200 and "<p>sub</p>" in text  # a directory serves its index.html
    status, _, headers = await get(f"{base}/")
    assert status == 302 and headers["Location"] == "/__moltbot__/canvas/"
    status, _, headers = await get(f"{base}/__moltbot__/canvas")
    assert status == 302
    status, text, _ = await get(f"{base}/__moltbot__/canvas/missing.txt")
    assert status == 404
    (root / "index.html").unlink()
    status, text, _ = await get(f"{base}/__moltbot__/canvas/")
    assert status == 404 and "Create index.html" in text
    assert str(home) not in text  # the 404 page never shows an absolute path
    status, text, _ = await get(f"{base}/__moltbot__/ws")
    assert status == 426
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/__moltbot__/canvas/app.js") as response:
            assert response.status == 405


async def test_path_traversal_and_symlinks_refused(home: Path, canvas_host) -> None:
    made = make_instance(home, "main")
    host = await canvas_host(made)
    root = made.instance.canvas_root
    secret = made.instance.state_dir / "secret.txt"
    secret.write_text("TOP SECRET")
    (root / "inner").mkdir()
    (root / "inner" / "ok.txt").write_text("fine")
    os.symlink(secret, root / "link.txt")
    os.symlink(root / "inner", root / "alias")  # even a symlink that stays inside
    os.symlink(made.instance.state_dir, root / "state")

    port = host.port
    for path in (
        "/__moltbot__/canvas/../../.clawdbot-main/secret.txt",
        "/__moltbot__/canvas/%2e%2e/%2e%2e/.clawdbot-main/secret.txt",
        "/__moltbot__/canvas/inner/..%2f..%2fsecret.txt",
        "/__moltbot__/canvas/inner%2f..%2f..%2fsecret.txt",
        "/__moltbot__/canvas/link.txt",
        "/__moltbot__/canvas/alias/ok.txt",
        "/__moltbot__/canvas/state/secret.txt",
        "/__moltbot__/canvas/%00.txt",
        "/__moltbot__/canvas/inner\\..\\..\\secret.txt",
    ):
        response = await asyncio.to_thread(raw_get, port, path)
        assert status_of(response) in (403, 404), (path, response)
        assert "TOP SECRET" not in response
    response = await asyncio.to_thread(raw_get, port, "/__moltbot__/canvas/inner/ok.txt")
    assert status_of(response) == 200 and response.endswith("fine")


async def test_dns_rebinding_and_cross_origin_refused(home: Path, canvas_host) -> None:
    made = make_instance(home, "main")
    host = await canvas_host(made)
    port = host.port
    response = await asyncio.to_thread(raw_get, port, "/__moltbot__/canvas/", "evil.example")
    assert status_of(response) == 421
    response = await asyncio.to_thread(raw_get, port, "/__moltbot__/canvas/", f"localhost:{port}")
    assert status_of(response) == 200
    status, _, _ = await get(
        f"http://127.0.0.1:{port}/__moltbot__/canvas/", headers={"Origin": "http://evil.example"}
    )
    assert status == 403
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await session.ws_connect(
                f"http://127.0.0.1:{port}/__moltbot__/ws", origin="http://evil.example"
            )
        assert caught.value.status == 403


async def test_live_reload_pushes_after_a_change(home: Path, canvas_host) -> None:
    made = make_instance(home, "main")
    host = await canvas_host(made)
    root = made.instance.canvas_root
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(
            f"http://127.0.0.1:{host.port}/__openclaw__/ws", origin=f"http://127.0.0.1:{host.port}"
        )
        hello = await ws.receive(timeout=5)
        assert hello.data == "generation 0"  # the page compares it with the one it was served
        assert host.status()["clients"] == 1
        # the watcher may start after the socket: change the page until a reload comes
        message = None
        for version in range(2, 40):
            (root / "page.html").write_text(f"<p>v{version}</p>")
            try:
                message = await ws.receive(timeout=0.5)
                break
            except TimeoutError:
                continue
        assert message is not None and message.data == "reload"
        await ws.close()
    assert host.status()["reloads"] >= 1
    status, text, _ = await get(f"http://127.0.0.1:{host.port}/__moltbot__/canvas/page.html")
    assert f"generation = {host.reloads};" in text


async def test_the_watcher_ignores_hidden_files_and_node_modules(tmp_path: Path) -> None:
    """Changes are reported in the order they happen, so once a batch with the visible
    change arrived, any batch holding the ignored ones (written before it) would have too."""
    import logging

    batches: list[set[str]] = []
    stop = asyncio.Event()

    async def on_change(paths: set[str]) -> None:
        batches.append(paths)

    async def reported(name: str, timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not any(str(tmp_path / name) in batch for batch in batches):
            assert asyncio.get_running_loop().time() < deadline, batches
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(
        livereload.watch(tmp_path, on_change, stop, logging.getLogger("test"))
    )
    try:
        # barrier: the watcher is up once one of its own changes is reported
        for attempt in range(40):
            (tmp_path / "probe.html").write_text(str(attempt))
            try:
                await reported("probe.html", timeout=0.5)
                break
            except AssertionError:
                continue
        await reported("probe.html")
        batches.clear()
        (tmp_path / ".hidden").write_text("ignored")
        (tmp_path / "node_modules").mkdir()
        (tmp_path / "node_modules" / "lib.js").write_text("ignored")
        (tmp_path / "page.html").write_text("<p>v2</p>")
        await reported("page.html")
        seen = set().union(*batches)
        assert not {p for p in seen if "/.hidden" in p or "/node_modules" in p}, batches
    finally:
        stop.set()
        await asyncio.wait_for(watcher, 10)


async def test_disabled_and_port_taken(home: Path, canvas_host) -> None:
    off = make_instance(home, "off", config={"canvasHost": {"enabled": False}})
    host = await canvas_host(off)
    assert host.state == State.DISABLED
    skipped = make_instance(home, "skip", env={"OPENCLAW_SKIP_CANVAS_HOST": "1"})
    host = await canvas_host(skipped)
    assert host.state == State.DISABLED and "OPENCLAW_SKIP_CANVAS_HOST" in host.reason
    taken = make_instance(home, "taken")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken.instance.canvas_port))
        holder.listen()
        with pytest.raises(PortInUseError) as caught:
            await canvas_host(taken)
    assert str(taken.instance.canvas_port) in caught.value.message


async def test_wider_bind_needs_token_or_capability(home: Path, canvas_host) -> None:
    made = make_instance(home, "lan", config={"gateway": {"bind": "lan"}})
    host = await canvas_host(made)
    assert host.wide and host.status()["requiresAuth"]
    base = f"http://127.0.0.1:{host.port}"
    status, _, headers = await get(f"{base}/__moltbot__/canvas/")
    assert status == 401 and "Bearer" in headers["WWW-Authenticate"]
    for wrong in near_misses(made.token):  # a prefix or length comparison would pass these
        status, _, _ = await get(
            f"{base}/__moltbot__/canvas/", headers={"Authorization": f"Bearer {wrong}"}
        )
        assert status == 401, wrong
    status, text, _ = await get(
        f"{base}/__moltbot__/canvas/", headers={"Authorization": f"Bearer {made.token}"}
    )
    assert status == 200
    capability_url = host.url("index.html")
    assert f"/__moltbot__/cap/{host.capability}/canvas/index.html" in capability_url
    status, text, _ = await get(capability_url)
    assert status == 200
    assert f'"/__moltbot__/cap/{host.capability}/ws"' in text
    status, _, _ = await get(f"{base}/__moltbot__/cap/wrong/canvas/index.html")
    assert status == 404
    for wrong in near_misses(host.capability):
        status, _, _ = await get(f"{base}/__moltbot__/cap/{wrong}/canvas/index.html")
        assert status == 404, wrong
    # Any Host works when exposed (the credential protects), a foreign Origin never does.
    response = await asyncio.to_thread(
        raw_get, host.port, f"/__moltbot__/cap/{host.capability}/canvas/", "192.0.2.7:1"
    )
    assert status_of(response) == 200
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"{base}/__moltbot__/cap/{host.capability}/ws")
        await ws.close()
    other = make_instance(home, "other", config={"gateway": {"bind": "lan"}})
    assert (await canvas_host(other)).capability != host.capability
