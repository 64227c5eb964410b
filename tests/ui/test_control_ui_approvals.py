"""Exec approvals in the Control UI against a real gateway and the stand-in model: the
prompt pops up while the agent waits, and the answer given there unblocks the run."""

from __future__ import annotations

import pytest
from tests.agents.gateway_agents import start
from tests.fakes.llm_openai import openai_config
from tests.fakes.llm_script import Reply
from tests.ui.ui_helpers import CHROMIUM, open_ui

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium")


@pytest.fixture
def asking_gateway(home, llm):
    config = openai_config(llm.base_url)
    config["tools"] = {"exec": {"approvalTimeoutSeconds": 60}}
    gw = start(home, config)
    yield gw
    gw.stop()


async def asked(browser, gw, llm, command, reply):
    """The chat page after a message whose turn runs ``command``: its approval prompt."""
    context, page, errors = await open_ui(browser, gw)
    await page.wait_for_selector("body[data-history]")
    llm.push(Reply("", tool_calls=[("exec", {"command": command})]), Reply(reply))
    await page.fill("#input", f"please run {command}")
    await page.press("#input", "Enter")
    dialog = page.locator("#approval-dialog[open]")
    await dialog.wait_for(timeout=30_000)
    return context, page, errors, dialog


async def test_exec_approval_answered_in_the_ui_unblocks_the_run(browser, asking_gateway, llm):
    context, page, errors, dialog = await asked(browser, asking_gateway, llm, "seq 3", "counted")
    assert await dialog.locator("pre.command").text_content() == "seq 3"
    # while it waits, the Devices page lists it too
    await page.evaluate("() => { location.hash = '#/devices'; }")
    await page.wait_for_selector("#page-devices [data-table=approvals] >> text=seq 3")
    await dialog.locator("button[data-decision=allow-once]").click()
    await page.wait_for_selector("#approval-dialog:not([open])", state="attached")
    await page.click("#pages a[data-page=chat]")
    await page.wait_for_selector(".msg.assistant[data-state=final] >> text=counted", timeout=30_000)
    tool = page.locator("details.tool[data-tool=exec]").last
    await tool.locator("summary").click()
    assert "1\n2\n3" in await tool.locator("pre.result").text_content()
    tool_messages = [m for m in llm.requests[-1]["body"]["messages"] if m["role"] == "tool"]
    assert "1\n2\n3" in str(tool_messages[-1]["content"])
    await page.click("#pages a[data-page=devices]")
    await page.wait_for_selector("#page-devices section.card >> text=Nothing waits for an approval")
    assert errors == []
    await context.close()


async def test_a_denied_command_does_not_run(browser, asking_gateway, llm):
    gw = asking_gateway
    context, page, errors, dialog = await asked(browser, gw, llm, "touch denied.txt", "ok")
    await page.keyboard.press("Escape")  # Escape does not dismiss a waiting agent
    assert await dialog.is_visible()
    await dialog.locator("button[data-decision=deny]").click()
    await page.wait_for_selector(".msg.assistant[data-state=final] >> text=ok", timeout=30_000)
    tool_messages = [m for m in llm.requests[-1]["body"]["messages"] if m["role"] == "tool"]
    assert "not approved by an operator" in str(tool_messages[-1]["content"])
    workspace = gw.home / "clawd-main"
    assert not (workspace / "denied.txt").exists()
    assert errors == []
    await context.close()


async def device_connect(gw, key):
    """A device from a remote-looking address connects; the ``connect`` answer."""
    import json

    import aiohttp

    from gateway_harness import signed_connect_params

    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(gw.url, headers={"X-Forwarded-For": "203.0.113.9"}) as ws:
            challenge = json.loads((await ws.receive()).data)["payload"]["nonce"]
            params = signed_connect_params(gw.token, challenge, key=key)
            await ws.send_json({"type": "req", "id": "c", "method": "connect", "params": params})
            return json.loads((await ws.receive()).data)


async def test_device_pairing_approved_rotated_and_revoked_on_the_devices_page(
    browser, asking_gateway
):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    gw = asking_gateway
    key = Ed25519PrivateKey.generate()
    refused = await device_connect(gw, key)
    assert refused["error"]["code"] == "NOT_PAIRED"
    context, page, errors = await open_ui(browser, gw, "devices")
    pending = page.locator("#page-devices [data-table=device-pending] tbody tr")
    await pending.wait_for()
    await pending.locator("button >> text=Approve").click()
    await page.wait_for_selector("#page-devices .notice-line.ok >> text=Approved")
    paired = page.locator("#page-devices [data-table=device-paired] tbody tr")
    await paired.first.wait_for()
    assert (await device_connect(gw, key))["ok"] is True

    await paired.first.locator("button >> text=Rotate").click()
    await page.wait_for_selector("#page-devices .notice-line.ok >> text=shown once")
    page.on("dialog", lambda dialog: dialog.accept())
    await paired.first.locator("button >> text=Revoke").click()
    await page.wait_for_selector("#page-devices .notice-line.ok >> text=Revoked")
    await page.wait_for_selector("#page-devices [data-table=device-paired] >> text=revoked")
    assert errors == []
    await context.close()
