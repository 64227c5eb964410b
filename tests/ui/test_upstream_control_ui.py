"""Upstream's Control UI build (``dist/control-ui`` of OpenClaw 2026.1.30), served from
its own origin and pointed at a moltbot gateway, in real headless Chromium: it pairs
(an operator approves it), then every tab loads without a console error or an error
shown on the page and shows the gateway's data (a chat turn, its session, the
instances, every channel, a cron job, a skill, the config form and raw file, log lines,
the status snapshot, devices and exec approvals); the Config form saves an edit; chat,
New session and an exec approval prompt work; the Sessions, Channels, Skills and Nodes
tabs save edits (only the edited keys reach the files)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from tests.agents.gateway_agents import is_chat, start
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Reply
from tests.ui.ui_helpers import CHROMIUM
from tests.upstream import control_ui

from gateway_harness import GatewayProcess, WsClient, free_port_block, ws_client

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium")
SHOWN_ERRORS = re.compile(
    r"unknown method|missing scope|invalid [a-z.]+ params|unauthorized|not supported|"
    r"Schema unavailable|schema unavailable|Unsupported schema node|disconnected \(",
)


@pytest.fixture
async def ui_origin() -> AsyncIterator[str]:
    """The Control UI build on its own origin (a single-page app: unknown paths get
    index.html), as a reverse proxy or upstream's gateway would serve it."""
    root = control_ui()

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(root / "index.html")

    app = web.Application()
    app.router.add_static("/assets", root / "assets")
    app.router.add_get("/{tail:.*}", index)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port_block(1)
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
def gateway(home: Path, llm: FakeOpenAI, ui_origin: str) -> Iterator[GatewayProcess]:
    config = openai_config(llm.base_url)
    config["gateway"] = {"controlUi": {"allowedOrigins": [ui_origin]}}
    config["tools"] = {"exec": {"approvalTimeoutSeconds": 60}}
    gw = start(home, config, env={"CLAWDBOT_SKIP_CHANNELS": None})
    yield gw
    gw.stop()


class Page:
    """A page of the Control UI; every console error and page error is kept."""

    def __init__(self, page: Any, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"pageerror: {exc}"))

    def _console(self, message: Any) -> None:
        if message.type in ("error", "assert"):
            self.problems.append(f"console.{message.type}: {message.text}")

    async def text(self) -> str:
        return str(await self.page.inner_text("main"))

    async def until_text(self, needle: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while needle not in (text := await self.page.inner_text("body")):
            assert time.monotonic() < deadline, f"{needle!r} never shown:\n{text[-2000:]}"
            await asyncio.sleep(0.1)
        return text


async def open_ui(browser: Any, origin: str, gw: GatewayProcess) -> Page:
    context = await browser.new_context()
    settings = {
        "gatewayUrl": gw.url,
        "token": gw.token,
        "sessionKey": "main",
        "lastActiveSessionKey": "main",
        "theme": "light",
    }
    await context.add_init_script(
        "localStorage.setItem('openclaw.control.settings.v1', "
        f"JSON.stringify({json.dumps(settings)}))"
    )

    async def offline(route: Any) -> None:  # the page's fonts etc. (no network here)
        await route.fulfill(status=200, body="")

    await context.route(lambda url: not url.startswith(("http://127.0.0.1", "ws://")), offline)
    page = Page(await context.new_page(), origin)
    await page.page.goto(f"{origin}/overview")
    return page


async def approve_ui_device(op: WsClient) -> dict[str, Any]:
    """The UI connected from another origin: it is not local, so it waits for approval."""
    deadline = time.monotonic() + 20
    while True:
        pending = (await op.call("device.pair.list"))["pending"]
        ui = [r for r in pending if r.get("clientId") == "openclaw-control-ui"]
        if ui:
            break
        assert time.monotonic() < deadline, "the Control UI never asked to pair"
        await asyncio.sleep(0.1)
    (request,) = ui
    assert request["scopes"] and "operator.admin" in request["scopes"]
    approved = await op.call("device.pair.approve", {"requestId": request["requestId"]})
    return dict(approved["device"])


async def paired_ui(
    browser: Any, origin: str, gw: GatewayProcess, op: WsClient
) -> tuple[Page, dict[str, Any]]:
    """The UI open and connected: it asked to pair, the operator approved, it reloaded."""
    page = await open_ui(browser, origin, gw)
    await page.until_text("pairing required")
    device = await approve_ui_device(op)
    await page.page.reload()
    await page.until_text("Connected")
    return page, device


async def seed(op: WsClient, home: Path) -> str:
    """Data for every tab: a chat turn, a cron job, a skill. Returns the reply text."""
    ack = await op.call(
        "chat.send", {"sessionKey": "main", "message": "seeded hello", "idempotencyKey": "seed"}
    )
    await op.wait_event(is_chat(ack["runId"], "final"), timeout=30)
    await op.call(
        "cron.add",
        {
            "name": "morning check",
            "schedule": {"kind": "cron", "expr": "0 7 * * *"},
            "sessionTarget": "main",
            "wakeMode": "next-heartbeat",
            "payload": {"kind": "systemEvent", "text": "Good morning"},
        },
    )
    source = home / "skill-src" / "weather"
    source.mkdir(parents=True)
    (source / "SKILL.md").write_text(
        "---\nname: weather\ndescription: Current weather for a city\n---\nAsk wttr.in.\n"
    )
    await op.call("skills.install", {"name": "weather", "installId": "copy", "source": str(source)})
    return "echo: seeded hello"


def channel_labels() -> list[str]:
    from moltbot.channels.registry import manifests

    return [m.label for m in manifests().values()]


async def test_every_tab_of_upstreams_control_ui_loads(
    browser: Any, ui_origin: str, gateway: GatewayProcess, llm: FakeOpenAI, home: Path
) -> None:
    async with ws_client(gateway.url, gateway.token) as op:
        reply = await seed(op, home)
        page, device = await paired_ui(browser, ui_origin, gateway, op)
        page.problems.clear()  # the refused first connect logged its close; nothing since
        shown = {
            "overview": ["Connected", "Enabled"],  # ... and cron enabled
            "chat": ["seeded hello", reply],
            "sessions": ["agent:main:main"],
            "instances": ["openclaw-control-ui", "test", "gateway 2026.1.30"],
            "channels": channel_labels(),
            "cron": ["morning check", "System: Good morning"],
            "skills": ["weather", "Current weather for a city"],
            "config": ["Gateway", "Port", "Agents", "Models"],
            "logs": ["listening on 127.0.0.1", "agents ready: main"],
            "debug": ['"profile": "main"', '"defaultAgentId": "main"'],
            "nodes": ["Exec approvals", "Devices", device["deviceId"], "operator.admin"],
        }
        for tab, needles in shown.items():
            await page.page.goto(f"{ui_origin}/{tab}")
            await page.until_text("Connected" if tab == "overview" else "OPENCLAW")
            await op.call("health")  # let the tab's requests be answered
            for needle in needles:
                await page.until_text(needle)
            text = await settled_text(page)
            errors = SHOWN_ERRORS.findall(text)
            danger = await page.page.locator(".callout.danger:visible").all_inner_texts()
            assert not errors and not danger, f"{tab}: {errors} {danger}"
            assert not page.problems, f"{tab}: {page.problems}"
        # the raw config file, as the gateway has it
        await page.page.goto(f"{ui_origin}/config")
        await page.page.get_by_role("button", name="Raw", exact=True).click()
        raw = await page.page.locator("textarea").first.input_value()
        assert json.loads(raw)["models"]["providers"]["fake"]["baseUrl"] == llm.base_url
        assert not page.problems, page.problems


async def test_the_config_form_and_skills_tab_save_edits(
    browser: Any, ui_origin: str, gateway: GatewayProcess, llm: FakeOpenAI, home: Path
) -> None:
    async with ws_client(gateway.url, gateway.token) as op:
        page, _ = await paired_ui(browser, ui_origin, gateway, op)
        await page.page.goto(f"{ui_origin}/config")
        await page.until_text("Tools")
        await page.page.locator(".config-nav__item", has_text="Tools").click()
        await page.page.get_by_role("button", name="Exec", exact=True).click()
        await page.until_text("Approval timeout seconds")
        await page.page.get_by_role("button", name="always", exact=True).click()  # tools.exec.ask
        await page.until_text("1 unsaved change")
        await page.page.get_by_role("button", name="Save", exact=True).click()
        await page.until_text("No changes")
        snapshot = await op.call("config.get", {})
        assert snapshot["config"]["tools"]["exec"]["ask"] == "always"
        assert json.loads(snapshot["raw"])["tools"]["exec"] == {
            "approvalTimeoutSeconds": 60,
            "ask": "always",
        }
        # the Skills tab turns a skill off; the gateway applies it without a restart
        await seed(op, home)
        await page.page.goto(f"{ui_origin}/skills")
        await page.until_text("Current weather for a city")
        await page.page.get_by_role("button", name="Disable", exact=True).click()
        await page.until_text("Enable")
        snapshot = await op.call("config.get", {})
        assert snapshot["config"]["skills"]["entries"]["weather"] == {"enabled": False}
        applied = await until_logged(op, "skills.entries")
        assert applied.startswith("applied config change live"), applied
        # Update (upstream's self-update) says what to do instead
        await page.page.goto(f"{ui_origin}/config")
        await page.page.get_by_role("button", name="Update", exact=True).click()
        await page.until_text("upgrade the moltbot package")
        assert not page.problems, page.problems


async def until_logged(op: WsClient, needle: str) -> str:
    """The first gateway log message containing ``needle`` (waits for it, bounded)."""
    deadline = time.monotonic() + 20
    while True:
        lines = (await op.call("logs.tail", {"limit": 500}))["lines"]
        found = [json.loads(line)["message"] for line in lines if needle in line]
        if found:
            return str(found[0])
        assert time.monotonic() < deadline, f"{needle!r} never logged"
        await asyncio.sleep(0.1)


async def test_sessions_channels_and_exec_approvals_edited_in_upstreams_ui(
    browser: Any, ui_origin: str, gateway: GatewayProcess, llm: FakeOpenAI, home: Path
) -> None:
    async with ws_client(gateway.url, gateway.token) as op:
        await seed(op, home)
        page, _ = await paired_ui(browser, ui_origin, gateway, op)
        # Sessions: a label and a thinking level, set in the row (sessions.patch)
        await page.page.goto(f"{ui_origin}/sessions")
        await page.until_text("agent:main:main")
        row = page.page.locator(".table-row", has_text="agent:main:main")
        await row.locator("input").fill("daily driver")
        await row.locator("input").press("Enter")
        await row.locator("select").first.select_option("high")
        deadline = time.monotonic() + 20
        while True:
            (entry,) = [
                s
                for s in (await op.call("sessions.list", {}))["sessions"]
                if s["key"] == "agent:main:main"
            ]
            if entry.get("label") and entry.get("thinkingLevel"):
                break
            assert time.monotonic() < deadline, entry
            await asyncio.sleep(0.1)
        assert (entry["label"], entry["thinkingLevel"]) == ("daily driver", "high")
        # Channels: Telegram's editor (its section of config.schema) saves one field
        await page.page.goto(f"{ui_origin}/channels")
        await page.until_text("History limit")
        limit = page.page.get_by_text("History limit", exact=True).first.locator(
            "xpath=ancestor::*[.//input][1]//input"
        )
        await limit.fill("30")
        await limit.press("Tab")
        await page.page.get_by_role("button", name="Save", exact=True).first.click()
        deadline = time.monotonic() + 20
        while "channels" not in (await op.call("config.get", {}))["parsed"]:
            assert time.monotonic() < deadline, "the channel config was never saved"
            await asyncio.sleep(0.1)
        assert (await op.call("config.get", {}))["parsed"]["channels"] == {
            "telegram": {"historyLimit": 30}
        }
        # Nodes > Exec approvals: the default ask policy, saved to the approvals file
        await page.page.goto(f"{ui_origin}/nodes")
        await page.until_text("Default prompt policy")
        ask = page.page.get_by_text("Default prompt policy.").locator(
            "xpath=ancestor::*[.//select][1]//select"
        )
        await ask.select_option(label="Always")
        await page.page.get_by_role("button", name="Save").first.click()
        deadline = time.monotonic() + 20
        while (await op.call("exec.approvals.get", {}))["file"].get("defaults", {}).get(
            "ask"
        ) != "always":
            assert time.monotonic() < deadline, "the approvals file was never saved"
            await asyncio.sleep(0.1)
        assert not page.problems, page.problems


async def settled_text(page: Page) -> str:
    """The tab's text once it stopped changing (its requests answered and rendered)."""
    previous = ""
    for _ in range(40):
        text = await page.text()
        if text == previous and "Loading" not in text:
            return text
        previous = text
        await asyncio.sleep(0.15)
    return previous


async def test_chat_new_session_and_an_exec_approval_in_upstreams_ui(
    browser: Any, ui_origin: str, gateway: GatewayProcess, llm: FakeOpenAI
) -> None:
    async with ws_client(gateway.url, gateway.token) as op:
        page, _ = await paired_ui(browser, ui_origin, gateway, op)
        await page.page.goto(f"{ui_origin}/chat")
        box = page.page.locator(".chat-compose textarea")
        await box.fill("hello from the control ui")
        await box.press("Enter")
        await page.until_text("echo: hello from the control ui", timeout=30)
        # New session: the reset's closing event carries the UI's own run id, so it is
        # not left "busy" (its button reads "Stop" while a run of its own is going)
        button = page.page.locator(".chat-compose__actions .btn").first
        await button.click()
        await page.until_text("Started a new session.", timeout=30)
        await page.until_text("New session")
        assert (await button.inner_text()).strip() == "New session"
        # an exec that needs an approval: the UI shows the prompt, the operator allows it
        llm.push(Reply("", tool_calls=[("exec", {"command": "seq 2"})]), Reply("counted"))
        await box.fill("count")
        await box.press("Enter")
        await page.until_text("Allow once", timeout=30)
        assert "seq 2" in await page.page.inner_text("body")
        await page.page.get_by_role("button", name="Allow once").click()
        await page.until_text("counted", timeout=30)
        resolved = await op.wait_event(lambda f: f["event"] == "exec.approval.resolved")
        assert resolved["payload"]["decision"] == "allow-once"
        assert resolved["payload"]["resolvedBy"]  # the UI's client name
        tool = [m for m in llm.requests[-1]["body"]["messages"] if m["role"] == "tool"][-1]
        assert tool["content"].splitlines()[1:3] == ["1", "2"]
        assert not page.problems, page.problems
