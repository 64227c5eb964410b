"""The agent tools ``canvas`` and ``browser`` together: publish a page, look at it, click."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import Made, make_instance, needs_chromium

from moltbot.agents.tools import TOOLS
from moltbot.agents.tools.base import ToolContext, ToolError
from moltbot.agents.tools.browser import BrowserTool
from moltbot.agents.tools.canvas import CanvasTool


def tool_context(made: Made, **running: Any) -> ToolContext:
    return ToolContext(
        agent_id="main",
        session_key="agent:main:main",
        run_id="run-1",
        workspace=made.instance.workspace,
        instance=made.instance,
        config=made.config,
        env=made.env,
        logger=logging.getLogger("test.tool"),
        lookup=lambda name: running.get(name),
    )


async def run(tool: Any, ctx: ToolContext, **arguments: Any) -> Any:
    return await tool.run(ctx, tool.parse(arguments))


def test_tool_table_finds_both_tools() -> None:
    import importlib

    for name, cls in (("browser", BrowserTool), ("canvas", CanvasTool)):
        module, _, attr = TOOLS[name].partition(":")
        assert getattr(importlib.import_module(module), attr) is cls


async def test_canvas_tool_files_and_urls(home: Path, canvas_host) -> None:
    made = make_instance(home, "main")
    tool = CanvasTool()
    offline = tool_context(made)
    result = await run(tool, offline, action="url", path="index.html")
    assert result["served"] is False
    assert result["url"].endswith(f":{made.instance.canvas_port}/__moltbot__/canvas/index.html")

    host = await canvas_host(made)
    ctx = tool_context(made, canvas=host)
    written = await run(tool, ctx, action="write", path="app/page.html", content="<p>hi</p>")
    assert written["url"] == host.url("app/page.html") and written["served"]
    assert (made.instance.canvas_root / "app" / "page.html").read_text() == "<p>hi</p>"
    assert await run(tool, ctx, action="read", path="app/page.html") == "<p>hi</p>"
    listed = await run(tool, ctx, action="list")
    assert {"path": "app/page.html", "size": 9, "url": host.url("app/page.html")} in listed["files"]
    for bad in ("../escape.html", "app/../../x.html", "%2e%2e/x.html"):
        with pytest.raises(ToolError, match="refused"):
            await run(tool, ctx, action="write", path=bad, content="x")
    os.symlink(made.instance.state_dir, made.instance.canvas_root / "state")
    with pytest.raises(ToolError, match="refused"):
        await run(tool, ctx, action="write", path="state/moltbot.json", content="{}")
    assert (await run(tool, ctx, action="delete", path="app/page.html"))["deleted"]
    with pytest.raises(ToolError, match="needs path"):
        await run(tool, ctx, action="write", content="x")


async def test_browser_tool_without_service(home: Path) -> None:
    made = make_instance(home, "main")
    with pytest.raises(ToolError, match="not running"):
        await run(BrowserTool(), tool_context(made), action="status")


@needs_chromium
async def test_agent_publishes_a_page_and_clicks_it(
    home: Path, canvas_host, browser_service
) -> None:
    made = make_instance(home, "main")
    host = await canvas_host(made)
    service = await browser_service(made)
    ctx = tool_context(made, canvas=host, browser=service)
    canvas, browser = CanvasTool(), BrowserTool()

    page = await run(
        canvas,
        ctx,
        action="write",
        path="todo.html",
        content=(
            "<title>Todo</title><h1>Todo</h1><input aria-label='Item'>"
            "<button onclick=\"document.querySelector('h1').textContent='Saved: '+"
            "document.querySelector('input').value\">Save</button>"
        ),
    )
    opened = await run(browser, ctx, action="open", url=page["url"])
    assert opened["url"] == page["url"]
    text = await run(browser, ctx, action="snapshot")
    assert text.startswith("# Todo") and 'heading "Todo"' in text
    item = re.search(r'textbox "Item" \[ref=(e\d+)\]', text).group(1)
    save = re.search(r'button "Save" \[ref=(e\d+)\]', text).group(1)
    await run(browser, ctx, action="act", kind="type", ref=item, text="milk")
    await run(browser, ctx, action="act", kind="click", ref=save)
    assert 'heading "Saved: milk"' in await run(browser, ctx, action="snapshot")
    shot = await run(browser, ctx, action="screenshot")
    saved = Path(shot["path"])
    assert saved.parent == made.instance.workspace / "screenshots"
    assert saved.read_bytes()[:4] == b"\x89PNG" and shot["media"] == f"MEDIA:{saved}"
    with pytest.raises(ToolError, match="needs url"):
        await run(browser, ctx, action="navigate")
    with pytest.raises(ToolError, match="snapshot"):
        await run(browser, ctx, action="act", kind="click", ref="e999")
    tabs = await run(browser, ctx, action="tabs")
    assert any(tab["url"] == page["url"] for tab in tabs["tabs"])
