"""``canvas``: pages the agent publishes on this instance's canvas host (base+4).

Files live in the instance's canvas folder (``<workspace>/canvas``); the canvas
host serves them and reloads open pages when they change. ``write`` returns the
URL to open (with the browser tool, or to send to the user); paths that leave
the folder and symlinks are refused.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from moltbot.agents.tools.base import Tool, ToolContext, ToolError, ToolParams, ToolResult
from moltbot.canvas import files
from moltbot.subsystems import CANVAS
from moltbot.validation import Field

MAX_READ_CHARS = 200_000


class CanvasParams(ToolParams):
    action: Literal["write", "read", "list", "delete", "url"] = Field(
        description="write (path, content) | read (path) | list | delete (path) | url (path?)"
    )
    path: str | None = Field(
        default=None, description="File path inside the canvas, e.g. index.html or app/main.js."
    )
    content: str | None = Field(default=None, description="For write: the file's text.")


class CanvasTool(Tool):
    name = "canvas"
    description = (
        "Publish web pages on this instance's canvas: write HTML/CSS/JS files and get the URL "
        "where they are served. Open pages reload automatically when a file changes. Use "
        "the browser tool to look at a page."
    )
    Params = CanvasParams

    def enabled(self, config: Any) -> bool:
        return bool(config.canvas_host.enabled)

    async def run(self, ctx: ToolContext, params: CanvasParams) -> ToolResult:
        root = ctx.instance.canvas_root
        host = ctx.lookup(CANVAS)

        def url(rel: str = "") -> str:
            if host is not None:
                return str(host.url(rel))
            return f"http://127.0.0.1:{ctx.instance.canvas_port}/__moltbot__/canvas/{rel}"

        served = {"served": host is not None}
        if host is None:
            served["note"] = "the canvas host is not running; the URL works once it is"
        try:
            match params.action:
                case "write":
                    path = _need(params.path, "path")
                    if params.content is None:
                        raise ToolError("canvas write needs content")
                    written = await asyncio.to_thread(
                        files.write, root, path, params.content.encode("utf-8")
                    )
                    rel = written.relative_to(root.resolve()).as_posix()
                    return {
                        "ok": True,
                        "path": rel,
                        "bytes": len(params.content.encode()),
                        "url": url(rel),
                        **served,
                    }
                case "read":
                    path = _need(params.path, "path")
                    found = await asyncio.to_thread(files.resolve, root, path)
                    if found is None:
                        raise ToolError(f"no such canvas file: {path}")
                    data = await asyncio.to_thread(files.read, found)
                    text = data.decode("utf-8", errors="replace")
                    return text[:MAX_READ_CHARS]
                case "list":
                    entries = await asyncio.to_thread(files.listing, root)
                    return {
                        "root": str(root),
                        "files": [{**e, "url": url(str(e["path"]))} for e in entries],
                        **served,
                    }
                case "delete":
                    path = _need(params.path, "path")
                    removed = await asyncio.to_thread(files.delete, root, path)
                    return {"ok": True, "deleted": removed, "path": path}
                case "url":
                    return {"url": url(params.path or ""), **served}
        except files.Refused as exc:
            raise ToolError(f"canvas {params.action} refused: {exc}") from None
        raise ToolError(f"unknown canvas action {params.action}")


def _need(value: str | None, name: str) -> str:
    if not value:
        raise ToolError(f"this canvas action needs {name}")
    return value
