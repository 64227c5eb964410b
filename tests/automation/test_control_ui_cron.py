"""Upstream's Control UI (its own build, in real headless Chromium) on its Cron tab
against a real gateway: it lists the jobs, disables, runs and removes one, shows its
run history, and adds a job with its form."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.automation.control_ui import serve_control_ui
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.ui.ui_helpers import CHROMIUM
from tests.upstream import control_ui, validate

from gateway_harness import ws_client

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium")
SETTINGS_KEY = "openclaw.control.settings.v1"


async def jobs(client: Any) -> dict[str, dict[str, Any]]:
    listed = (await client.call("cron.list", {"includeDisabled": True}))["jobs"]
    for job in listed:
        validate("CronJob", job)
    return {job["name"]: job for job in listed}


async def test_cron_tab_lists_and_edits_jobs(llm: FakeOpenAI, launch: Any, browser: Any) -> None:
    ui = control_ui()
    gw = await launch(openai_config(llm.base_url))
    async with ws_client(gw.url, gw.token) as client:
        await client.call(
            "cron.add",
            {
                "name": "morning",
                "schedule": {"kind": "cron", "expr": "0 7 * * *", "tz": "Europe/Berlin"},
                "sessionTarget": "main",
                "wakeMode": "next-heartbeat",
                "payload": {"kind": "systemEvent", "text": "Good morning"},
            },
        )
        async with serve_control_ui(ui, gw.port) as base:
            context = await browser.new_context()
            settings = {"gatewayUrl": base.replace("http", "ws", 1) + "/ws", "token": gw.token}
            stored = json.dumps(json.dumps(settings))
            await context.add_init_script(
                f"localStorage.setItem({json.dumps(SETTINGS_KEY)}, {stored})"
            )
            page = await context.new_page()
            await page.goto(f"{base}/cron")
            await page.wait_for_selector("text=Cron 0 7 * * * (Europe/Berlin)", timeout=20_000)
            await page.wait_for_selector("text=System: Good morning")

            await page.get_by_role("button", name="Disable").click()
            await page.get_by_role("button", name="Enable").wait_for(timeout=10_000)
            assert (await jobs(client))["morning"]["enabled"] is False

            await page.get_by_role("button", name="Run", exact=True).click()
            await page.wait_for_selector("text=Latest runs for", timeout=10_000)
            morning = (await jobs(client))["morning"]
            [entry] = (await client.call("cron.runs", {"id": morning["id"]}))["entries"]
            assert entry["status"] == "ok" and entry["summary"] == "Good morning"
            await page.wait_for_selector(f"text={morning['id']}", timeout=10_000)

            await page.get_by_label("Name").fill("from the ui")
            await page.get_by_label("System text").fill("Stretch your legs")
            await page.get_by_role("button", name="Add job").click()
            await page.wait_for_selector("text=System: Stretch your legs", timeout=10_000)
            added = (await jobs(client))["from the ui"]
            assert added["schedule"] == {"kind": "every", "everyMs": 30 * 60_000}
            assert added["payload"] == {"kind": "systemEvent", "text": "Stretch your legs"}

            page.on("dialog", lambda dialog: dialog.accept())
            await page.get_by_role("button", name="Remove").first.click()
            await page.wait_for_function(
                "() => !document.body.innerText.includes('System: Good morning')", timeout=10_000
            )
            assert set(await jobs(client)) == {"from the ui"}
            await context.close()
