"""Control UI actions in real Chromium against a real gateway: the Logs page's Pause
(new lines are held back, not shown, until Resume) and the Sessions page's Compact and
Reset."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tests.agents.gateway_agents import start
from tests.fakes.llm_openai import openai_config as fake_provider
from tests.ui.ui_helpers import CHROMIUM, open_ui

from gateway_harness import ws_client

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium")

RELOAD_LINE = "applied config change live"


async def tail_until(client: Any, text: str) -> int:
    """The log's end (a ``logs.tail`` cursor) once a line containing ``text`` is in it."""
    for _ in range(150):
        result = await client.call("logs.tail", {"limit": 500})
        if any(text in line for line in result["lines"]):
            return int(result["cursor"])
        await asyncio.sleep(0.1)
    raise AssertionError(f"no log line with {text!r}")


async def test_logs_pause_holds_new_lines_until_resume(browser, gateway):
    gw = gateway["gw"]
    context, page, errors = await open_ui(browser, gw, "logs")
    await page.wait_for_selector("#page-logs .log-line")
    pause = page.locator("#page-logs button[aria-pressed]")
    await pause.click()
    await page.wait_for_selector("body[data-logs-paused=true]")
    assert await pause.get_attribute("aria-pressed") == "true"
    async with ws_client(gw.url, gw.token) as client:
        current = await client.call("config.get")
        patch = {"session": {"identityLinks": {"pause-marker": ["telegram:1"]}}}
        await client.call("config.patch", {"raw": json.dumps(patch), "baseHash": current["hash"]})
        end = await tail_until(client, RELOAD_LINE)
    # barrier: the paused page has read the log past that line ...
    await page.wait_for_function(
        f"() => Number(document.querySelector('#page-logs .log-out').dataset.cursor) >= {end}",
        timeout=15_000,
    )
    # ... and shows none of it, only a count on the button
    shown = await page.locator("#page-logs .log-line").all_text_contents()
    assert shown and not any(RELOAD_LINE in line for line in shown)
    assert int(await pause.get_attribute("data-held")) >= 1
    assert (await pause.text_content()).startswith("Resume (")
    await pause.click()
    await page.wait_for_selector(f"#page-logs .log-line >> text={RELOAD_LINE}")
    assert await pause.text_content() == "Pause"
    assert await pause.get_attribute("aria-pressed") == "false"
    lines = await page.locator("#page-logs .log-line").all_text_contents()
    assert sum(RELOAD_LINE in line for line in lines) == 1  # shown once, not twice
    assert errors == []
    await context.close()


async def test_sessions_page_compacts_and_resets(browser, home, llm):
    gw = start(home, fake_provider(llm.base_url, "m1", compaction={"keepRecentTokens": 0}))
    try:
        async with ws_client(gw.url, gw.token) as client:
            for n, text in enumerate(("first turn", "second turn", "third turn")):
                ack = await client.call(
                    "chat.send", {"sessionKey": "main", "message": text, "idempotencyKey": f"t{n}"}
                )
                await client.call("agent.wait", {"runId": ack["runId"], "timeoutMs": 15_000})
            before = await client.call("chat.history", {"sessionKey": "main"})
            context, page, errors = await open_ui(browser, gw, "sessions")
            page.on("dialog", lambda dialog: dialog.accept())
            await page.click("#page-sessions .row-open >> nth=0")
            detail = page.locator("#page-sessions .detail")
            await detail.locator(".preview-item[data-role=user] >> text=third turn").wait_for()

            await detail.locator("button >> text=Compact").click()
            await page.wait_for_selector("#page-sessions .notice-line.ok >> text=Compacted:")
            [row] = (await client.call("sessions.list", {}))["sessions"]
            assert row["compactionCount"] == 1
            # the original lines stay (a compaction entry is added)
            after = await client.call("chat.history", {"sessionKey": "main"})
            assert after["sessionId"] == before["sessionId"]

            await detail.locator("button >> text=Reset").click()
            await page.wait_for_selector("#page-sessions .notice-line.ok >> text=Reset.")
            await detail.locator("text=No messages yet.").wait_for()
            reset = await client.call("chat.history", {"sessionKey": "main"})
            assert reset["messages"] == []
            assert reset["sessionId"] != before["sessionId"]
            assert errors == []
            await context.close()
    finally:
        gw.stop()
