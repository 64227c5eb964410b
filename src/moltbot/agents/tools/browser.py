"""``browser``: the agent's hands on this instance's browser.

Runs the routes of the gateway's browser control service in-process (the same
table the HTTP service on base+2 and ``browser.request`` use). The usual loop:
``open`` or ``navigate`` a URL, ``snapshot`` to read the page (elements carry
refs like ``e12``), ``act`` on a ref (click, type, ...), ``snapshot`` again.
Screenshots are saved under ``<workspace>/screenshots/`` and returned by path.

``open`` and ``navigate`` go through the same network guard as ``web_fetch``
(:mod:`.netguard`): a URL whose host is, or resolves to, a private or loopback
address is refused (this instance's canvas host excepted). A page the browser
reaches anyway (a redirect, a clicked link) is not shown to the model: the tab
is sent to ``about:blank`` and the action fails.
"""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any, Literal

from moltbot.agents.tools.base import Tool, ToolContext, ToolError, ToolParams, ToolResult
from moltbot.agents.tools.confine import workspace_confinement
from moltbot.agents.tools.fs import write_bytes
from moltbot.agents.tools.netguard import NetPolicy, check_url, page_refusal
from moltbot.subsystems import BROWSER
from moltbot.validation import Field

Action = Literal[
    "status",
    "start",
    "stop",
    "profiles",
    "tabs",
    "open",
    "focus",
    "close",
    "navigate",
    "snapshot",
    "screenshot",
    "act",
    "console",
]
ActKind = Literal["click", "type", "press", "fill", "select", "hover", "wait", "scrollIntoView"]


class BrowserParams(ToolParams):
    action: Action = Field(
        description=(
            "status | start | stop | profiles | tabs | open (url) | focus (targetId) | "
            "close (targetId?) | navigate (url) | snapshot | screenshot | act (kind, ref, ...) | "
            "console"
        )
    )
    profile: str | None = Field(
        default=None, description="Browser profile (default profile when omitted)."
    )
    url: str | None = Field(default=None, description="For open / navigate: an http(s) URL.")
    targetId: str | None = Field(default=None, description="Tab id (default: current tab).")
    kind: ActKind | None = Field(default=None, description="For act: what to do.")
    ref: str | None = Field(
        default=None, description="Element ref from the latest snapshot, e.g. e12."
    )
    text: str | None = Field(
        default=None, description="For act type: the text; for act wait: text to wait for."
    )
    key: str | None = Field(default=None, description="For act press: e.g. Enter.")
    submit: bool = Field(default=False, description="For act type: press Enter afterwards.")
    values: list[str] | None = Field(default=None, description="For act select: option values.")
    timeMs: int | None = Field(default=None, description="For act wait: milliseconds.")
    fullPage: bool = Field(default=False, description="For screenshot: the whole page.")
    maxChars: int | None = Field(default=None, description="For snapshot: truncate the text.")


class BrowserTool(Tool):
    name = "browser"
    description = (
        "Control a real web browser (Chromium) on this host. Open or navigate to a URL, then "
        "take a snapshot: the page's accessibility tree where each element has a ref like "
        "[ref=e12]. Use act with kind=click|type|press|fill|select|hover|wait and that ref. "
        "Refs change when the page changes: snapshot again after acting. screenshot saves a "
        "PNG and returns its path."
    )
    Params = BrowserParams

    def enabled(self, config: Any) -> bool:
        return bool(config.browser.enabled)

    async def run(self, ctx: ToolContext, params: BrowserParams) -> ToolResult:
        service = ctx.lookup(BROWSER)
        if service is None:
            raise ToolError(
                "the browser control service is not running in this gateway "
                "(browser.enabled=false or it failed to start)"
            )
        method, path, query, body = _route(params)
        if params.profile:
            query["profile"] = params.profile
        guard = NetPolicy.for_browser(ctx.config, ctx.instance.canvas_port)
        if params.action in ("open", "navigate") and body is not None:
            target = str(body["url"]).strip()
            if target.lower() != "about:blank":
                await check_url(_with_scheme(target), guard)
        reply = await service.request(method, path, query, body, 120_000)
        if not reply.ok:
            data = reply.body if isinstance(reply.body, dict) else {}
            hint = f" ({data['hint']})" if data.get("hint") else ""
            raise ToolError(f"browser {params.action} failed: {data.get('error')}{hint}")
        data = reply.body
        landed = data.get("url") if isinstance(data, dict) else None
        if isinstance(landed, str) and (why := await page_refusal(landed, guard)):
            await _leave(service, query, data.get("targetId"))
            raise ToolError(f"browser {params.action}: the page went to {why}; left it")
        if params.action == "snapshot":
            return (
                f"# {data.get('title') or '(untitled)'} — {data['url']} "
                f"(targetId {data['targetId']})\n{data['snapshot']}"
            )
        if params.action == "screenshot":
            box = workspace_confinement(ctx)
            name = f"{time.strftime('%Y%m%d-%H%M%S')}-{str(data['targetId'])[:8]}.png"
            file = box.resolve(f"screenshots/{name}")
            await asyncio.to_thread(write_bytes, box, file, base64.b64decode(data["data"]))
            return {
                "ok": True,
                "path": str(file),
                "bytes": data["bytes"],
                "url": data["url"],
                "targetId": data["targetId"],
                "media": f"MEDIA:{file}",
            }
        return data


def _with_scheme(url: str) -> str:
    """The URL the browser service will open (it adds https:// to a bare host)."""
    stripped = url.strip()
    return stripped if "://" in stripped else "https://" + stripped


async def _leave(service: Any, query: dict[str, Any], target: Any) -> None:
    body = {"url": "about:blank", **({"targetId": target} if target else {})}
    try:
        await service.request("POST", "/navigate", dict(query), body, 20_000)
    except Exception:  # the refusal stands even if the tab cannot be cleared
        pass


def _route(p: BrowserParams) -> tuple[str, str, dict[str, Any], dict[str, Any] | None]:
    def need(field: str) -> Any:
        value = getattr(p, field)
        if value in (None, ""):
            raise ToolError(f"browser {p.action} needs {field}")
        return value

    target = {"targetId": p.targetId} if p.targetId else {}
    match p.action:
        case "status":
            return "GET", "/", {}, None
        case "start" | "stop":
            return "POST", f"/{p.action}", {}, None
        case "profiles":
            return "GET", "/profiles", {}, None
        case "tabs":
            return "GET", "/tabs", {}, None
        case "open":
            return "POST", "/tabs/open", {}, {"url": need("url")}
        case "focus":
            return "POST", "/tabs/focus", {}, {"targetId": need("targetId")}
        case "close":
            return "POST", "/tabs/close", {}, target
        case "navigate":
            return "POST", "/navigate", {}, {"url": need("url"), **target}
        case "snapshot":
            query: dict[str, Any] = dict(target)
            if p.maxChars is not None:
                query["maxChars"] = p.maxChars
            return "GET", "/snapshot", query, None
        case "screenshot":
            body: dict[str, Any] = {**target, "fullPage": p.fullPage}
            if p.ref:
                body = {**target, "ref": p.ref}
            return "POST", "/screenshot", {}, body
        case "console":
            return "GET", "/console", dict(target), None
        case "act":
            act: dict[str, Any] = {"kind": need("kind"), **target}
            for field in ("ref", "key", "values", "timeMs"):
                if getattr(p, field) is not None:
                    act[field] = getattr(p, field)
            if p.text is not None:
                act["text"] = p.text
            if p.submit:
                act["submit"] = True
            if p.kind == "fill" and p.ref and p.text is not None:
                act = {"kind": "fill", "ref": p.ref, "value": p.text, **target}
            return "POST", "/act", {}, act
    raise ToolError(f"unknown browser action {p.action}")
