"""The Discord channel: discord.py against the stand-in Discord (gateway WebSocket + REST)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.channels.channel_helpers import (
    EchoDispatcher,
    channels_status,
    supervisor_ended,
    wait_for,
)
from tests.fakes.discord import FakeDiscord, user
from tests.fakes.media import png

from moltbot.channels.pairing import PairingStore
from moltbot.channels.types import AccountState, OutboundMessage

TOKEN = "MTA5ODc2NTQzMjEwOTg3NjU0MzI.GhIjKl.abcdefghijklmnopqrstuvwxyz012345"


def dc_config(fake: FakeDiscord, **discord: Any) -> dict[str, Any]:
    return {"channels": {"discord": {"token": TOKEN, "apiRoot": fake.api_root, **discord}}}


async def test_dm_pairing_then_reply(
    fake_discord: FakeDiscord, start_manager: Any, home: Path
) -> None:
    bot = fake_discord.bot(TOKEN)
    agent = EchoDispatcher()
    manager = await start_manager(dc_config(fake_discord), dispatcher=agent)
    await bot.wait_ready()
    await bot.push_message("hello")
    [pairing] = await bot.wait_sent(1)
    assert "Your Discord user id: 4242" in pairing.content
    code = pairing.content.split("Pairing code: ")[1].split()[0]
    assert agent.calls == []
    PairingStore(home / ".clawdbot" / "credentials", "discord").approve(code)
    await bot.push_message("hi again")
    sent = await bot.wait_sent(2)
    assert sent[1].content == "echo: hi again"
    assert sent[1].channel_id == bot.dm_channel("4242")
    assert agent.calls[0]["session_key"] == "agent:main:main"
    status = channels_status(manager)["channelAccounts"]["discord"][0]
    assert status["state"] == "running" and status["connected"] is True
    assert status["bot"]["username"] == "moltbot"
