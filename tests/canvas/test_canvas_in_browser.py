"""A canvas page in the real Chromium, driven through the browser control service."""

from __future__ import annotations

import asyncio
import base64
import re
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import make_instance, needs_chromium

PAGE = """<!doctype html>
<html><head><title>Canvas test</title></head>
<body>
<h1>Version %d</h1>
<button onclick="window.clicks = (window.clicks || 0) + 1;
  document.getElementById('out').textContent = 'clicked ' + window.clicks">Press me</button>
<label>Name <input id="name"></label>
<p id="out">not clicked</p>
<script>console.log("canvas page version %d loaded")</script>
</body></html>
"""


def ref_of(snapshot: dict[str, Any], role: str, name: str) -> str:
    for ref, entry in snapshot["refs"].items():
        if entry["role"] == role and entry.get("name") == name:
            return ref
    raise AssertionError(f"no {role} {name!r} in:\n{snapshot['snapshot']}")


async def ok(service: Any, method: str, path: str, body: Any = None) -> Any:
    reply = await service.request(method, path, body=body, timeout_ms=90_000)
    assert reply.status == 200, reply.body
    return reply.body


@needs_chromium
async def test_snapshot_click_type_screenshot_and_live_reload(
    home: Path, canvas_host, browser_service
) -> None:
    made = make_instance(home, "main")
    (made.instance.canvas_root).mkdir(parents=True)
    page = made.instance.canvas_root / "index.html"
    page.write_text(PAGE % (1, 1))
    canvas = await canvas_host(made)
    service = await browser_service(made)

    tab = await ok(service, "POST", "/tabs/open", {"url": canvas.url("index.html")})
    assert tab["url"].startswith(f"http://127.0.0.1:{made.instance.port + 4}/__moltbot__/canvas/")
    snap = await ok(service, "GET", f"/snapshot?targetId={tab['targetId']}")
    assert snap["title"] == "Canvas test"
    assert 'heading "Version 1"' in snap["snapshot"]
    button = ref_of(snap, "button", "Press me")
    textbox = ref_of(snap, "textbox", "Name")

    clicked = await ok(service, "POST", "/act", {"kind": "click", "ref": button})
    assert clicked["targetId"] == tab["targetId"]
    await ok(service, "POST", "/act", {"kind": "type", "ref": textbox, "text": "Ada"})
    after = await ok(service, "GET", "/snapshot")
    assert "clicked 1" in after["snapshot"]
    assert re.search(r'textbox "Name".*: Ada', after["snapshot"]), after["snapshot"]

    shot = await ok(service, "POST", "/screenshot", {})
    png = base64.b64decode(shot["data"])
    assert shot["mimeType"] == "image/png" and png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 100 and height > 100
    element = await ok(service, "POST", "/screenshot", {"ref": button})
    assert base64.b64decode(element["data"])[:4] == b"\x89PNG"

    console = await ok(service, "GET", "/console")
    assert isinstance(console["messages"], list)

    # The page's live-reload socket is connected; editing the file reloads it.
    deadline = time.monotonic() + 20
    while canvas.status()["clients"] < 1:
        assert time.monotonic() < deadline, "the page never connected to live reload"
        await asyncio.sleep(0.1)
    page.write_text(PAGE % (2, 2))
    deadline = time.monotonic() + 30
    while True:
        snap = await ok(service, "GET", "/snapshot")
        if 'heading "Version 2"' in snap["snapshot"]:
            break
        assert time.monotonic() < deadline, snap["snapshot"]
        await asyncio.sleep(0.2)
    assert "not clicked" in snap["snapshot"]  # a fresh page, not our doing
    assert canvas.status()["reloads"] >= 1
    messages = (await ok(service, "GET", "/console"))["messages"]
    assert any("version 2 loaded" in m["text"] for m in messages), messages


@needs_chromium
async def test_refs_go_stale_with_a_clear_hint(home: Path, canvas_host, browser_service) -> None:
    made = make_instance(home, "main")
    made.instance.canvas_root.mkdir(parents=True)
    (made.instance.canvas_root / "index.html").write_text(PAGE % (1, 1))
    canvas = await canvas_host(made)
    service = await browser_service(made)
    await ok(service, "POST", "/tabs/open", {"url": canvas.url()})
    await ok(service, "GET", "/snapshot")
    reply = await service.request(
        "POST", "/act", body={"kind": "click", "ref": "e999", "timeoutMs": 1000}
    )
    assert reply.status >= 400
    assert "snapshot" in (reply.body.get("hint") or ""), reply.body


@pytest.mark.parametrize("mount", ["/__moltbot__/canvas/", "/__openclaw__/canvas/"])
@needs_chromium
async def test_navigate_to_both_mounts(
    home: Path, canvas_host, browser_service, mount: str
) -> None:
    made = make_instance(home, "main")
    made.instance.canvas_root.mkdir(parents=True)
    (made.instance.canvas_root / "index.html").write_text(PAGE % (3, 3))
    await canvas_host(made)
    service = await browser_service(made)
    url = f"http://127.0.0.1:{made.instance.canvas_port}{mount}"
    result = await ok(service, "POST", "/navigate", {"url": url})
    assert result["status"] == 200 and result["title"] == "Canvas test"
    tabs = await ok(service, "GET", "/tabs")
    assert any(t["url"] == url for t in tabs["tabs"])


FORM = """<!doctype html><html><head><title>Form</title></head><body>
<label>Color <select id="color"><option value="red">Red</option>
<option value="blue">Blue</option></select></label>
<label>First <input id="first"></label><label>Last <input id="last"></label>
<button id="hover" onmouseover="document.getElementById('status').textContent='hovered'">
Hover me</button>
<button onclick="setTimeout(() => document.getElementById('status').textContent =
  'later ' + document.getElementById('color').value + ' ' +
  document.getElementById('first').value + ' ' + document.getElementById('last').value, 300)">
Later</button>
<p id="status">idle</p>
</body></html>
"""


@needs_chromium
async def test_select_fill_hover_press_and_wait(home: Path, canvas_host, browser_service) -> None:
    made = make_instance(home, "main")
    made.instance.canvas_root.mkdir(parents=True)
    (made.instance.canvas_root / "form.html").write_text(FORM)
    canvas = await canvas_host(made)
    service = await browser_service(made)
    await ok(service, "POST", "/navigate", {"url": canvas.url("form.html")})
    snap = await ok(service, "GET", "/snapshot")
    color = ref_of(snap, "combobox", "Color")
    first, last = ref_of(snap, "textbox", "First"), ref_of(snap, "textbox", "Last")
    selected = await ok(
        service, "POST", "/act", {"kind": "select", "ref": color, "values": ["blue"]}
    )
    assert selected["result"] == ["blue"]
    await ok(
        service,
        "POST",
        "/act",
        {
            "kind": "fill",
            "fields": [{"ref": first, "value": "Ada"}, {"ref": last, "value": "Lovelace"}],
        },
    )
    await ok(service, "POST", "/act", {"kind": "hover", "ref": ref_of(snap, "button", "Hover me")})
    await ok(service, "POST", "/act", {"kind": "wait", "text": "hovered"})
    later = ref_of(snap, "button", "Later")
    await ok(service, "POST", "/act", {"kind": "click", "ref": later})
    await ok(
        service,
        "POST",
        "/act",
        {"kind": "wait", "text": "later blue Ada Lovelace", "timeoutMs": 10_000},
    )
    await ok(service, "POST", "/act", {"kind": "press", "key": "Tab"})
    reply = await service.request(
        "POST", "/act", body={"kind": "wait", "text": "never there", "timeoutMs": 500}
    )
    assert reply.status == 504 and "wait failed" in reply.body["error"]
