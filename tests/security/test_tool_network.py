"""Issue 11, item 12: the browser tool is held to the same network guard as
``web_fetch`` (one shared function, ``tools.web.allowPrivateNetwork`` /
``tools.web.allowHosts``); the instance's own canvas host stays reachable."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

from aiohttp import web
from tool_harness import FakeOpenAI, Reply, is_chat, llm, openai_config, start_agent, start_gateway

from gateway_harness import ws_client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "browser"))
from browser_helpers import kill_leftover_browsers, needs_chromium  # noqa: E402

__all__ = ["kill_leftover_browsers", "llm"]  # fixtures
SECRET = "INTRANET SECRET"


class Intranet:
    """A private web server (on loopback) that records every request it gets."""

    def __init__(self) -> None:
        self.hits: list[str] = []

    async def serve(self, host: str, routes: dict[str, str]) -> tuple[web.AppRunner, int]:
        app = web.Application()

        async def handle(request: web.Request) -> web.StreamResponse:
            self.hits.append(f"{host}{request.path}")
            target = routes.get(request.path, "")
            if target.startswith("redirect:"):
                raise web.HTTPFound(target.removeprefix("redirect:"))
            return web.Response(text=f"<title>t</title><p>{target}</p>", content_type="text/html")

        app.router.add_get("/{tail:.*}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, host, 0)
        await site.start()
        return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def tool_texts(llm: FakeOpenAI, request: int = -1) -> list[str]:
    messages = llm.requests[request]["body"]["messages"]
    return [m["content"] for m in messages if m["role"] == "tool"]


@needs_chromium
async def test_browser_tool_refuses_private_addresses_like_web_fetch(home, llm):
    intranet = Intranet()
    private, port = await intranet.serve("127.0.0.1", {"/secret": SECRET})
    redirector, rport = await intranet.serve(
        "127.0.0.2", {"/go": f"redirect:http://127.0.0.1:{port}/secret"}
    )
    config = openai_config(llm.base_url)
    config["tools"] = {"web": {"allowHosts": ["127.0.0.2"]}}
    gw = start_gateway(
        home,
        config,
        env={"CLAWDBOT_SKIP_BROWSER_CONTROL_SERVER": "0", "CLAWDBOT_SKIP_CANVAS_HOST": "0"},
    )
    try:
        canvas = f"http://127.0.0.1:{gw.port + 4}/__moltbot__/canvas/hello.html"
        llm.push(
            Reply(
                "",
                tool_calls=[
                    ("browser", {"action": "open", "url": f"http://127.0.0.1:{port}/secret"}),
                    ("browser", {"action": "navigate", "url": f"http://localhost:{port}/secret"}),
                    ("browser", {"action": "open", "url": f"[::1]:{port}/secret"}),
                    ("web_fetch", {"url": f"http://127.0.0.1:{port}/secret"}),
                    (
                        "canvas",
                        {"action": "write", "path": "hello.html", "content": "<p>canvas ok"},
                    ),
                    ("browser", {"action": "open", "url": canvas}),
                    ("browser", {"action": "snapshot"}),
                ],
            ),
            Reply(
                "",
                tool_calls=[
                    ("browser", {"action": "navigate", "url": f"http://127.0.0.2:{rport}/go"})
                ],
            ),
            Reply("", tool_calls=[("browser", {"action": "snapshot"})]),
            Reply("done"),
        )
        async with ws_client(gw.url, gw.token) as client:
            run = await client.call(
                "chat.send",
                {"sessionKey": "main", "message": "browse", "idempotencyKey": str(uuid.uuid4())},
            )
            final = await client.wait_event(is_chat(run["runId"], "final"), timeout=120)
            assert final["payload"]["message"]["content"][0]["text"] == "done"
        first = tool_texts(llm, 1)
        for text in first[:4]:
            assert "private or local address refused" in text, text
        assert "canvas ok" in first[6], first[6]  # the browser works; its own canvas is allowed
        redirected = tool_texts(llm, 2)[-1]
        assert "left it" in redirected and SECRET not in redirected, redirected
        after = tool_texts(llm, 3)[-1]
        assert SECRET not in after, after
        # only the redirect itself reached the private server; no direct open ever did
        pages = [hit for hit in intranet.hits if not hit.endswith("/favicon.ico")]
        assert pages == ["127.0.0.2/go", "127.0.0.1/secret"], intranet.hits
    finally:
        gw.stop()
        await private.cleanup()
        await redirector.cleanup()


async def test_allow_private_network_opens_both_tools(home, llm):
    intranet = Intranet()
    runner, port = await intranet.serve("127.0.0.1", {"/page": "reachable"})
    try:
        refused = await start_agent(home, llm)
        (result,) = await refused.call_tools(
            ("web_fetch", {"url": f"http://127.0.0.1:{port}/page"})
        )
        await refused.runtime.stop()
        assert result.is_error and "tools.web.allowPrivateNetwork" in result.text
        allowed = await start_agent(home, llm, {"tools": {"web": {"allowPrivateNetwork": True}}})
        (result,) = await allowed.call_tools(
            ("web_fetch", {"url": f"http://127.0.0.1:{port}/page"})
        )
        await allowed.runtime.stop()
        assert not result.is_error and "reachable" in result.text
        assert intranet.hits == ["127.0.0.1/page"]
    finally:
        await runner.cleanup()
