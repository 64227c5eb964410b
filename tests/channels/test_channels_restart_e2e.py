"""Inbound messages that arrive while a real gateway restarts are not lost: Telegram's
update offset and Slack's envelope acks wait until a message is durably queued."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
from pathlib import Path
from typing import Any

import pytest
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Reply, last_user_text
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram

from gateway_harness import start_gateway

NO_EXTRAS = {"CLAWDBOT_SKIP_BROWSER_CONTROL_SERVER": "1", "CLAWDBOT_SKIP_CANVAS_HOST": "1"}
SLOW = "a reply that takes a while " * 30


@pytest.fixture
async def llm() -> Any:
    async with FakeOpenAI(api_key="sk-test") as server:
        yield server


async def test_inbound_during_a_restart_is_not_lost(
    home: Path, llm: FakeOpenAI, fake_telegram: FakeTelegram, fake_slack: FakeSlack
) -> None:
    bot = fake_telegram.bot("900:restart-token")
    ws = fake_slack.workspace()
    state = home / ".clawdbot-main"
    state.mkdir(parents=True)
    config = {
        "gateway": {"mode": "local", "auth": {"token": secrets.token_urlsafe(24)}},
        **openai_config(llm.base_url),
        "channels": {
            "telegram": {
                "botToken": "900:restart-token",
                "apiRoot": fake_telegram.url,
                "pollTimeoutSeconds": 1,
                "allowFrom": ["4242"],
            },
            "slack": {
                "botToken": ws.bot_token,
                "appToken": ws.app_token,
                "apiUrl": fake_slack.api_url,
                "allowFrom": ["U0ANN"],
            },
        },
    }
    config["agents"]["defaults"]["workspace"] = str(home / "clawd-main")
    (state / "moltbot.json").write_text(json.dumps(config))
    gw = await asyncio.to_thread(start_gateway, home, "main", env=NO_EXTRAS)
    try:
        await bot.wait_polling(20)
        await ws.wait_connected(20)
        llm.push(Reply(SLOW, chunk_chars=4, chunk_delay=0.01))
        await bot.push_dm(4242, "one")
        while llm.active == 0:  # the first reply is streaming
            await asyncio.sleep(0.01)
        gw.signal(signal.SIGUSR1)
        await gw.wait_output("waiting up to 30s for 1 agent run(s) to finish")
        # both arrive while the gateway drains: refused there, so not confirmed
        await bot.push_dm(4242, "two")
        slack = asyncio.create_task(
            ws.push_event(ws.event(channel="D0ANN", user="U0ANN", text="three"), timeout=60)
        )
        sent = await bot.wait_sent(2, timeout=60)
        assert [s.text for s in sent] == [SLOW.strip(), "echo: two"]
        await slack
        [posted] = await ws.wait_posted(1, timeout=30)
        assert posted["text"] == "echo: three"
        assert "gateway restarted" in gw.output()
        # each message reached the model exactly once
        asked = [last_user_text(r["body"]) for r in llm.requests]
        assert sorted(asked) == ["one", "three", "two"], asked
        # the delivery made during the drain was not acknowledged; a retry was
        assert ws.deliveries[0]["envelope_id"] not in ws.acks
        assert [d["retry_attempt"] for d in ws.deliveries if d["envelope_id"] in ws.acks] != [0]
    finally:
        gw.stop()
