"""The Control UI's pages in real headless Chromium against a real gateway subprocess
and the stand-in model: every page loads cleanly, config edits (form and raw) save and
hot-reload, a base-hash conflict is shown and not overwritten, the logs tail live, and
the token never leaves the page's own origin."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import json5
import pytest
from tests.agents.gateway_agents import write_config
from tests.fakes.llm_script import Reply
from tests.ui.ui_helpers import CHROMIUM, open_ui

from gateway_harness import ws_client

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium")

PAGES = {
    "chat": "body[data-history]",
    "sessions": "#page-sessions table.grid",
    "config": "#page-config .schema-form details.group",
    "logs": "#page-logs .log-line",
    "channels": "#page-channels .page-body p.muted",
    "automation": "#page-automation table.grid",
    "host": "#page-host [data-table=instances]",
    "usage": "#page-usage section.card[data-usage=date]",
    "devices": "#page-devices section.card >> text=Nodes",
}


def config_file(home: Path) -> Path:
    return home / ".clawdbot-main" / "moltbot.json"


def on_disk(home: Path) -> dict:
    return json.loads(config_file(home).read_text())


async def find_setting(page, path: str):
    await page.fill("#page-config input[type=search]", path)
    field = page.locator(f'[data-path="{path}"]')
    await field.wait_for(state="visible")
    return field


async def review_and_save(page, outcome="#page-config .notice-line.ok >> text=Saved"):
    await page.click("#config-review")
    await page.click("#config-confirm")
    await page.wait_for_selector(outcome)


async def test_every_page_loads_without_console_errors(browser, gateway, home):
    gw = gateway["gw"]
    write_config(home, "work", {"gateway": {"port": gw.port + 40}})  # a second instance
    async with ws_client(gw.url, gw.token) as client:
        await client.call(
            "cron.add",
            {
                "name": "morning",
                "schedule": {"kind": "cron", "expr": "0 7 * * *"},
                "sessionTarget": "main",
                "wakeMode": "next-heartbeat",
                "payload": {"kind": "systemEvent", "text": "Good morning"},
            },
        )
    context, page, errors = await open_ui(browser, gw)
    await page.fill("#input", "hello")
    await page.press("#input", "Enter")
    await page.wait_for_selector(".msg.assistant[data-state=final]")
    for name, ready in PAGES.items():
        await page.click(f"#pages a[data-page={name}]")
        await page.wait_for_selector(ready, timeout=15_000)
        assert await page.evaluate("location.hash") == f"#/{name}"
        content = await page.text_content(f"#page-{name}")
        assert "[object " not in content and "null" not in content and "undefined" not in content
        shown = await page.locator(f"#page-{name} .notice-line.error").all_text_contents()
        assert not [t for t in shown if t], (name, shown)
    # the host page lists both instances on this host, this one with its live port
    instances = page.locator("#page-host [data-table=instances] tbody tr")
    assert await instances.count() == 2
    assert str(gw.port) in await instances.filter(has_text="(this)").text_content()
    assert "morning" in await page.text_content("#page-automation table.grid")
    # a value in a shape the form does not edit is shown, for the raw editor
    raw_only = '#page-config code.raw-only[data-path="agents.defaults.model"]'
    assert '"primary":"fake/m1"' in await page.text_content(raw_only)
    # heartbeat settings on the Automation page: validated inline, saved to the file
    await page.click("#pages a[data-page=automation]")
    every = page.locator('#page-automation [data-path="agents.defaults.heartbeat.every"]')
    await every.fill("soon")
    assert "must match" in await page.text_content("#page-automation .field-error:not([hidden])")
    await every.fill("45m")
    await page.click("#page-automation button >> text=Save heartbeat")
    await page.wait_for_selector("#page-automation .notice-line.ok >> text=Heartbeat saved")
    assert on_disk(home)["agents"]["defaults"]["heartbeat"] == {"every": "45m"}
    assert "agent:main:main" in await page.text_content("#page-sessions table.grid")
    # a reload lands on the same page, and keyboard focus reaches the page links
    await page.reload()
    await page.wait_for_selector(PAGES["automation"], timeout=15_000)
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.closest('#pages') !== null")
    assert focused
    # phone width: the menu button opens the page list
    await page.set_viewport_size({"width": 390, "height": 800})
    sidebar_right = "document.getElementById('sidebar').getBoundingClientRect().right"
    await page.wait_for_function(f"() => {sidebar_right} <= 0")  # off screen until asked for
    await page.click("#page-automation [data-menu]")
    await page.click("#pages a[data-page=logs]")
    await page.wait_for_selector("#page-logs:not([hidden])")
    assert not await page.evaluate("document.body.classList.contains('show-sidebar')")
    # light and dark follow the system
    background = "() => getComputedStyle(document.body).backgroundColor"
    await page.emulate_media(color_scheme="light")
    assert await page.evaluate(background) == "rgb(247, 246, 243)"
    await page.emulate_media(color_scheme="dark")
    assert await page.evaluate(background) == "rgb(21, 23, 28)"
    assert errors == []
    await context.close()


async def _applied_lines(client: Any) -> int:
    lines = (await client.call("logs.tail", {"limit": 500}))["lines"]
    return sum("applied config change live" in line for line in lines)


async def test_config_form_and_raw_edits_save_and_hot_reload(browser, gateway, llm, home):
    gw = gateway["gw"]
    async with ws_client(gw.url, gw.token) as client:  # the form edits the string form
        current = await client.call("config.get")
        patch = {"agents": {"defaults": {"model": "fake/m1"}}}
        await client.call("config.patch", {"raw": json.dumps(patch), "baseHash": current["hash"]})
        # a barrier: this change is applied before the page's own, so the two are never
        # one batch and the page's is the second "applied" line
        while await _applied_lines(client) < 1:
            await asyncio.sleep(0.05)
    context, page, errors = await open_ui(browser, gw, "config")
    field = await find_setting(page, "agents.defaults.model")
    assert await field.input_value() == "fake/m1"
    # a secret is write-only: not in the page, not sent back
    key = await find_setting(page, "models.providers.fake.apiKey")
    assert await key.input_value() == ""
    assert "sk-test" not in await page.content()

    field = await find_setting(page, "agents.defaults.model")
    await field.fill("fake/m2")
    timeout = await find_setting(page, "agents.defaults.timeoutSeconds")
    await timeout.fill("0")  # below the schema's minimum: marked inline, not saved
    assert "at least 1" in await page.text_content("#page-config .field-error:not([hidden])")
    await page.click("#config-review")
    await page.wait_for_selector("#page-config .review >> text=Fix these first")
    await timeout.fill("")
    await page.click("#config-review")
    changes = await page.text_content("#page-config .review ul.changes")
    assert 'agents.defaults.model: "fake/m1" → "fake/m2"' in changes
    await page.click("#config-confirm")
    await page.wait_for_selector("#page-config .notice-line.ok >> text=Saved")
    data = on_disk(home)
    assert data["agents"]["defaults"]["model"] == "fake/m2"
    assert data["models"]["providers"]["fake"]["apiKey"] == "sk-test"  # kept
    assert "timeoutSeconds" not in data["agents"]["defaults"]

    # hot reload: the running gateway's next turn goes to the new model, no restart
    await page.click("#pages a[data-page=logs]")
    applied = "#page-logs .log-line:has-text('applied config change live')"
    await page.wait_for_selector(f"{applied} >> nth=1", timeout=15_000)  # the page's save
    async with ws_client(gw.url, gw.token) as client:
        llm.push(Reply("from m2"))
        ack = await client.call(
            "chat.send", {"sessionKey": "agent:main:main", "message": "hi", "idempotencyKey": "k1"}
        )
        await client.call("agent.wait", {"runId": ack["runId"], "timeoutMs": 15_000})
    assert llm.requests[-1]["body"]["model"] == "m2"
    assert gw.proc.poll() is None

    # the raw editor: a syntax error is shown at its line and column, nothing is written
    await page.click("#pages a[data-page=config]")
    await page.click("#page-config [role=tab] >> text=Raw JSON5")
    raw = page.locator("#page-config textarea.raw")
    text = await raw.input_value()
    assert "fake/m2" in text and "sk-test" not in text
    before = config_file(home).read_text()
    await raw.fill(text.replace('"fake/m2"', '"fake/m1",,', 1))
    await review_and_save(page, "#page-config .raw-error:not([hidden])")
    error = page.locator("#page-config .raw-error")
    line = next(i for i, ln in enumerate(text.split("\n"), 1) if '"fake/m2"' in ln)
    assert await error.locator("[data-line]").get_attribute("data-line") == str(line)
    assert "two commas" in await error.text_content()
    assert config_file(home).read_text() == before

    await raw.fill("// edited in the browser\n" + text.replace('"fake/m2"', '"fake/m1"', 1))
    await page.click("#config-review")
    diff = await page.text_content("#page-config .review pre.diff")
    assert "- " in diff and "fake/m2" in diff and "+ " in diff and "fake/m1" in diff
    await page.click("#config-confirm")
    await page.wait_for_selector("#page-config .notice-line.ok >> text=Saved")
    # the redacted secret is put back into the text: the comment stays
    assert config_file(home).read_text().startswith("// edited in the browser\n")
    data = json5.loads(config_file(home).read_text())
    assert data["agents"]["defaults"]["model"] == "fake/m1"
    assert data["models"]["providers"]["fake"]["apiKey"] == "sk-test"
    await page.click("#pages a[data-page=logs]")
    await page.wait_for_selector(f"{applied} >> nth=2", timeout=15_000)  # the raw save
    async with ws_client(gw.url, gw.token) as client:
        llm.push(Reply("from m1"))
        ack = await client.call(
            "chat.send",
            {"sessionKey": "agent:main:main", "message": "again", "idempotencyKey": "k2"},
        )
        await client.call("agent.wait", {"runId": ack["runId"], "timeoutMs": 15_000})
    assert llm.requests[-1]["body"]["model"] == "m1"
    assert errors == []
    await context.close()


async def test_base_hash_conflict_is_shown_not_overwritten(browser, gateway, home):
    gw = gateway["gw"]
    context, page, errors = await open_ui(browser, gw, "config")
    field = await find_setting(page, "agents.defaults.maxConcurrent")
    async with ws_client(gw.url, gw.token) as client:  # someone else writes meanwhile
        current = await client.call("config.get")
        await client.call(
            "config.patch",
            {
                "raw": json.dumps({"agents": {"defaults": {"timeoutSeconds": 123}}}),
                "baseHash": current["hash"],
            },
        )
    theirs = config_file(home).read_text()
    await field.fill("3")
    await page.click("#config-review")
    await page.click("#config-confirm")
    conflict = page.locator("#page-config .conflict")
    await conflict.wait_for(state="visible")
    assert "Nothing was saved" in await conflict.text_content()
    assert "timeoutSeconds" in await conflict.locator("pre.diff").text_content()
    assert config_file(home).read_text() == theirs  # not overwritten
    assert await field.input_value() == "3"  # the user's edit is still there

    # the raw editor is guarded the same way
    await page.click("#page-config [role=tab] >> text=Raw JSON5")
    raw = page.locator("#page-config textarea.raw")
    assert "123" not in await raw.input_value()
    await raw.fill(await raw.input_value() + "\n")
    await review_and_save(page, "#page-config .notice-line.error >> text=changed since last load")
    assert config_file(home).read_text() == theirs

    await page.click("#page-config .conflict button >> text=Discard my edits")
    await page.wait_for_function(
        "() => document.querySelector('#page-config textarea.raw').value.includes('123')"
    )
    assert await conflict.is_hidden()
    assert errors == []
    await context.close()


async def test_logs_tail_shows_a_new_line(browser, gateway):
    gw = gateway["gw"]
    context, page, errors = await open_ui(browser, gw, "logs")
    await page.wait_for_selector("#page-logs .log-line")
    marker = "tail-marker-7431"
    async with ws_client(gw.url, gw.token) as client:
        current = await client.call("config.get")
        await client.call(
            "config.patch",
            {
                "raw": json.dumps({"session": {"identityLinks": {marker: ["telegram:1"]}}}),
                "baseHash": current["hash"],
            },
        )
    await page.wait_for_selector(
        "#page-logs .log-line >> text=applied config change live", timeout=15_000
    )
    # the search narrows the view to matching lines
    await page.fill("#page-logs input[type=search]", "applied config change")
    visible = await page.locator("#page-logs .log-line").all_text_contents()
    assert visible and all("applied config change" in line for line in visible)
    assert errors == []
    await context.close()


async def test_token_goes_only_to_the_own_origin(browser, gateway):
    gw = gateway["gw"]
    context = await browser.new_context()
    page = await context.new_page()
    requests: list[str] = []
    sockets: list[str] = []
    frames: list[tuple[str, str]] = []
    page.on("request", lambda r: requests.append(r.url))

    def socket(ws):
        sockets.append(ws.url)
        ws.on("framesent", lambda payload: frames.append((ws.url, str(payload))))

    page.on("websocket", socket)
    await page.goto(f"{gw.http}/#token={gw.token}")
    await page.wait_for_selector("body[data-conn=connected]")
    assert await page.evaluate("location.href") == f"{gw.http}/"
    for name in PAGES:
        await page.click(f"#pages a[data-page={name}]")
        await page.wait_for_selector(f"#page-{name}:not([hidden])")
    await page.wait_for_selector(PAGES["devices"])
    origin = gw.http + "/"
    assert requests and all(url.startswith(origin) for url in requests), requests
    assert not [url for url in requests if gw.token in url]
    assert sockets == [f"ws://127.0.0.1:{gw.port}/"]
    carrying = [url for url, payload in frames if gw.token in payload]
    assert carrying == [sockets[0]]  # once: the connect frame on the page's own socket
    assert await page.evaluate("localStorage.length") == 0 or gw.token not in await page.evaluate(
        "JSON.stringify(Object.assign({}, localStorage))"
    )
    response = await page.request.get(f"{gw.http}/lib/conn.js")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    await context.close()


async def test_chat_renders_markdown_safely(browser, gateway, llm):
    gw = gateway["gw"]
    context, page, errors = await open_ui(browser, gw)
    reply = (
        "## Plan\n**Bold** and *soft* with `x = 1`, [docs](https://example.com/d) and "
        "[bad](javascript:alert(1)) <img src=x onerror=alert(1)>\n\n- one\n- two\n\n"
        "```python\ndef f():\n    return 'hi'  # note\n```\nafter"
    )
    llm.push(Reply(reply, chunk_chars=15))
    await page.fill("#input", "format something")
    await page.press("#input", "Enter")
    text = page.locator(".msg.assistant[data-state=final] .text").last
    await text.wait_for()
    assert await text.locator("h4").text_content() == "Plan"
    assert await text.locator("strong").text_content() == "Bold"
    assert await text.locator("em").text_content() == "soft"
    assert await text.locator("li").all_text_contents() == ["one", "two"]
    links = text.locator("a")
    assert await links.count() == 1
    assert await links.get_attribute("href") == "https://example.com/d"
    assert await links.get_attribute("rel") == "noopener noreferrer"
    assert await text.locator("img").count() == 0
    assert "<img src=x onerror=alert(1)>" in await text.text_content()
    code = text.locator("pre code")
    assert await code.get_attribute("data-lang") == "python"
    assert await code.locator(".tok-keyword").all_text_contents() == ["def", "return"]
    assert await code.locator(".tok-comment").text_content() == "# note"
    assert await text.locator("pre button.copy").is_visible()
    assert errors == []
    await context.close()


async def test_sessions_page_labels_previews_and_deletes(browser, gateway, llm):
    gw = gateway["gw"]
    async with ws_client(gw.url, gw.token) as client:
        for key, text in (("agent:main:main", "first topic"), ("agent:main:side", "side topic")):
            ack = await client.call(
                "chat.send", {"sessionKey": key, "message": text, "idempotencyKey": key}
            )
            await client.call("agent.wait", {"runId": ack["runId"], "timeoutMs": 15_000})
        context, page, errors = await open_ui(browser, gw, "sessions")
        await page.wait_for_selector("#page-sessions table.grid >> text=agent:main:side")
        await page.fill("#page-sessions input[type=search]", "side")
        assert await page.locator("#page-sessions tbody tr").count() == 1
        await page.click("#page-sessions .row-open")
        await page.wait_for_selector("#page-sessions .preview-item >> text=side topic")
        await page.fill("#page-sessions input[aria-label=Label]", "Side project")
        await page.click("#page-sessions .detail button >> text=Save")
        await page.wait_for_selector("#page-sessions .row-open >> text=Side project")
        rows = (await client.call("sessions.list", {}))["sessions"]
        assert {r["key"]: r.get("label") for r in rows}["agent:main:side"] == "Side project"
        page.on("dialog", lambda dialog: dialog.accept())
        await page.click("#page-sessions .detail button >> text=Delete")
        await page.wait_for_selector("#page-sessions .notice-line.ok >> text=Deleted")
        rows = (await client.call("sessions.list", {}))["sessions"]
        assert [r["key"] for r in rows] == ["agent:main:main"]
        # "Open in chat" switches the chat page to that session
        await page.fill("#page-sessions input[type=search]", "")
        await page.click("#page-sessions .row-open")
        await page.click("#page-sessions .detail button >> text=Open in chat")
        await page.wait_for_selector("#page-chat:not([hidden]) .msg.user >> text=first topic")
        assert errors == []
        await context.close()


async def test_config_history_restores_an_earlier_version(browser, gateway, home):
    gw = gateway["gw"]
    async with ws_client(gw.url, gw.token) as client:
        for seconds in (111, 222):
            current = await client.call("config.get")
            patch = {"agents": {"defaults": {"timeoutSeconds": seconds}}}
            await client.call(
                "config.patch", {"raw": json.dumps(patch), "baseHash": current["hash"]}
            )
    assert on_disk(home)["agents"]["defaults"]["timeoutSeconds"] == 222
    context, page, errors = await open_ui(browser, gw, "config")
    await page.click("#page-config [role=tab] >> text=History")
    rows = page.locator("#page-config [data-table=history] tbody tr")
    await rows.first.wait_for()
    assert "config.patch over the protocol" in await rows.first.text_content()
    await rows.first.locator("button >> text=Restore").click()  # number 1: the 111 version
    diff = await page.text_content("#page-config .review pre.diff")
    assert "- " in diff and "222" in diff and "+ " in diff and "111" in diff
    await page.click("#config-confirm")
    await page.wait_for_selector("#page-config .notice-line.ok >> text=Saved")
    data = on_disk(home)
    assert data["agents"]["defaults"]["timeoutSeconds"] == 111
    assert data["models"]["providers"]["fake"]["apiKey"] == "sk-test"
    assert errors == []
    await context.close()
