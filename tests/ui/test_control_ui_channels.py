"""The Channels page against a real gateway with the stand-in Telegram and model: the
account's state, and a DM pairing request approved from the page lets that user chat."""

from __future__ import annotations

import asyncio
import json

import pytest
from tests.agents.gateway_agents import write_config
from tests.channels.channel_helpers import running
from tests.fakes.llm_openai import openai_config
from tests.fakes.llm_script import Reply
from tests.fakes.telegram import FakeTelegram
from tests.ui.ui_helpers import CHROMIUM, open_ui

from gateway_harness import start_gateway, ws_client

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium")
NO_EXTRAS = {"CLAWDBOT_SKIP_BROWSER_CONTROL_SERVER": "1", "CLAWDBOT_SKIP_CANVAS_HOST": "1"}
BOT = "900:ui-token"


@pytest.fixture
async def fake_telegram():
    async with running(FakeTelegram()) as fake:
        yield fake


async def test_pairing_approved_on_the_channels_page(browser, llm, home, fake_telegram):
    bot = fake_telegram.bot(BOT)
    telegram = {"botToken": BOT, "apiRoot": fake_telegram.url, "pollTimeoutSeconds": 1}
    write_config(home, "main", {**openai_config(llm.base_url), "channels": {"telegram": telegram}})
    gw = await asyncio.to_thread(start_gateway, home, "main", env=NO_EXTRAS)
    try:
        await bot.wait_polling(20)
        await bot.push_dm(4242, "hello?", first_name="Ann", username="ann")
        [pairing] = await bot.wait_sent(1, timeout=30)
        code = pairing.text.split("Pairing code: ")[1].split()[0]

        context, page, errors = await open_ui(browser, gw, "channels")
        card = page.locator("#page-channels section.card[data-channel=telegram]")
        await card.wait_for()
        assert await card.locator(".badge").first.text_content() == "running"
        row = page.locator("#page-channels [data-table=pairing] tbody tr")
        await row.wait_for()
        assert code in await row.text_content() and "@ann" in await row.text_content()
        await row.locator("button >> text=Approve").click()
        await page.wait_for_selector("#page-channels .notice-line.ok >> text=Approved")
        await page.wait_for_selector("#page-channels ul.allowed >> text=telegram: 4242")
        assert await page.locator("#page-channels [data-table=pairing]").count() == 0

        llm.push(Reply("Hi Ann."))
        await bot.push_dm(4242, "status report", first_name="Ann", username="ann")
        sent = await bot.wait_sent(2, timeout=30)
        assert sent[1].text == "Hi Ann."
        async with ws_client(gw.url, gw.token) as client:
            listed = await client.call("channels.pairing.list", {"channel": "telegram"})
        assert listed == {"requests": [], "allowed": {"telegram": ["4242"]}}

        # the channel's settings: a form from its manifest's schema, the token write-only
        await card.locator("details.channel-settings > summary").click()
        token = card.locator('[data-path="channels.telegram.botToken"]')
        await token.wait_for()
        assert await token.get_attribute("type") == "password"
        assert await token.input_value() == ""
        poll = card.locator('[data-path="channels.telegram.pollTimeoutSeconds"]')
        await poll.fill("2")
        await card.locator("button >> text=Save settings").click()
        await page.wait_for_selector("#page-channels .notice-line.ok >> text=settings saved")
        saved = json.loads((home / ".clawdbot-main" / "moltbot.json").read_text())
        assert saved["channels"]["telegram"]["pollTimeoutSeconds"] == 2
        assert saved["channels"]["telegram"]["botToken"] == BOT
        assert errors == []
        await context.close()
    finally:
        gw.stop()
