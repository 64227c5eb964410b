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


async def test_guild_mention_gating_thread_reply_and_ack_reaction(
    fake_discord: FakeDiscord, start_manager: Any
) -> None:
    bot = fake_discord.bot(TOKEN)
    agent = EchoDispatcher()
    await start_manager(dc_config(fake_discord, groupPolicy="open"), dispatcher=agent)
    await bot.wait_ready()
    quiet = await bot.push_message("just chatting", channel="guild")
    asked = await bot.push_message("what's up?", channel="guild", mention=True)
    [reply] = await bot.wait_sent(1)
    assert reply.channel_id == bot.channel_id and reply.content.startswith("echo: ")
    [call] = agent.calls  # the unmentioned message came as context only
    assert "just chatting" in call["text"] and "what's up?" in call["text"]
    assert call["session_key"] == f"agent:main:discord:channel:{bot.channel_id}"
    assert (bot.channel_id, asked["id"], "👀") in bot.reactions
    assert all(r[1] != quiet["id"] for r in bot.reactions)
    await bot.push_message("deploy status?", channel="thread", mention=True)
    sent = await bot.wait_sent(2)
    assert sent[1].channel_id == bot.thread_id  # answered inside the thread
    key = f"agent:main:discord:channel:{bot.channel_id}:thread:{bot.thread_id}"
    assert agent.calls[-1]["session_key"] == key


async def test_long_reply_is_chunked_without_breaking_code(
    fake_discord: FakeDiscord, start_manager: Any
) -> None:
    bot = fake_discord.bot(TOKEN)
    code = "```python\n" + "\n".join(f"print({i})" for i in range(40)) + "\n```"
    prose = "\n\n".join("word " * 150 for _ in range(6))
    agent = EchoDispatcher(reply=lambda text: prose + "\n\n" + code)
    await start_manager(dc_config(fake_discord, allowFrom=["4242"]), dispatcher=agent)
    await bot.wait_ready()
    await bot.push_message("long please")
    await bot.wait(lambda: sum(s.content.count("print(") for s in bot.sent) == 40)
    chunks = [s.content for s in bot.sent]
    assert len(chunks) >= 4
    assert all(len(c) <= 2000 and c.count("\n") < 17 for c in chunks)
    for chunk in chunks:
        if "print(" in chunk:  # every piece of the code block is a whole fence
            assert chunk.count("```") == 2, chunk


async def test_image_in_and_file_out(
    fake_discord: FakeDiscord, start_manager: Any, home: Path, tmp_path: Path
) -> None:
    bot = fake_discord.bot(TOKEN)
    picture = png(4, 4)
    chart = tmp_path / "chart.png"
    chart.write_bytes(png(8, 8, (0, 255, 0)))
    agent = EchoDispatcher(reply=lambda text: f"here it is\nMEDIA: {chart}")

    async def resolve_media(agent_id: str, item: str) -> str:
        return item

    agent.resolve_media = resolve_media  # type: ignore[attr-defined]
    await start_manager(dc_config(fake_discord, allowFrom=["4242"]), dispatcher=agent)
    await bot.wait_ready()
    await bot.push_message(
        "what is this?", attachments=[bot.attachment("photo.png", picture, "image/png")]
    )
    [reply] = await bot.wait_sent(1)
    [stored] = agent.calls[0]["media"]
    assert stored.kind == "image" and stored.mime_type == "image/png"
    assert Path(stored.path).read_bytes() == picture
    assert reply.content == "here it is"
    [file] = reply.files
    assert file["filename"] == "chart.png" and file["data"] == chart.read_bytes()


async def test_oversized_attachment_is_described_not_downloaded(
    fake_discord: FakeDiscord, start_manager: Any
) -> None:
    bot = fake_discord.bot(TOKEN)
    agent = EchoDispatcher()
    await start_manager(
        dc_config(fake_discord, allowFrom=["4242"], mediaMaxMb=0.001), dispatcher=agent
    )
    await bot.wait_ready()
    big = bot.attachment("scan.pdf", b"%PDF-1.4\n" + b"0" * 5000, "application/pdf")
    await bot.push_message("see attached", attachments=[big])
    await bot.wait_sent(1)
    assert agent.calls[0]["media"] == ()
    assert "<media:document>" in agent.calls[0]["text"]


async def test_resume_after_a_dropped_connection_and_no_replay_after_restart(
    fake_discord: FakeDiscord, start_manager: Any
) -> None:
    bot = fake_discord.bot(TOKEN)
    agent = EchoDispatcher()
    config = dc_config(fake_discord, allowFrom=["4242"])
    manager = await start_manager(config, dispatcher=agent)
    await bot.wait_ready()
    await bot.push_message("one")
    await bot.wait_sent(1)
    await bot.drop()
    await bot.push_message("two (sent while the bot was away)")  # logged for the RESUME
    await bot.wait(lambda: bot.resumes == 1 and bot.live() is not None)
    await bot.wait_sent(2)
    assert bot.identifies == 1  # resumed, not re-identified
    await manager.stop()
    manager = await start_manager(config, dispatcher=agent)
    await bot.wait_ready(identifies=2)
    await bot.push_message("three")
    await bot.wait_sent(3)  # barrier: answered after anything a replay would have caused
    assert [c["text"] for c in agent.calls] == [
        "one",
        "two (sent while the bot was away)",
        "three",
    ]


async def test_revoked_token_fails_the_account_not_the_gateway(
    fake_discord: FakeDiscord, fake_telegram: Any, start_manager: Any
) -> None:
    bot = fake_discord.bot(TOKEN)
    tg = fake_telegram.bot("777:tg")
    config = dc_config(fake_discord, allowFrom=["4242"])
    config["channels"]["telegram"] = {
        "botToken": "777:tg",
        "apiRoot": fake_telegram.url,
        "pollTimeoutSeconds": 1,
        "allowFrom": ["4242"],
    }
    manager = await start_manager(config, dispatcher=EchoDispatcher())
    await bot.wait_ready()
    bot.revoke()
    runner = manager.runner("discord")
    await wait_for(lambda: runner.status.state is AccountState.FAILED)
    await supervisor_ended("discord")  # barrier: nothing is left that could retry
    status = channels_status(manager)["channelAccounts"]["discord"][0]
    assert status["state"] == "failed" and status["connected"] is False
    assert "authentication failed" in status["lastError"]
    assert manager.state.value == "running"
    await tg.wait_polling()
    await tg.push_dm(4242, "still here?")
    [answer] = await tg.wait_sent(1)  # the other channel keeps serving
    assert answer.text == "echo: still here?"


async def test_targets_of_message_send(fake_discord: FakeDiscord, start_manager: Any) -> None:
    bot = fake_discord.bot(TOKEN)
    manager = await start_manager(dc_config(fake_discord), dispatcher=EchoDispatcher())
    await bot.wait_ready()
    result = await manager.send("discord", "user:4242", OutboundMessage(text="hi"))
    assert result.chat_id == bot.dm_channel("4242")
    result = await manager.send("discord", f"<#{bot.channel_id}>", OutboundMessage(text="hey"))
    assert result.chat_id == bot.channel_id
    from moltbot.channels.errors import TargetError

    for bad in ("4242", "general", "user:"):
        try:
            await manager.send("discord", bad, OutboundMessage(text="x"))
        except TargetError as exc:
            assert "discord target" in exc.message
        else:
            raise AssertionError(f"{bad!r} was accepted")
    assert [s.content for s in bot.sent] == ["hi", "hey"]
    assert user("1")["id"] == "1"
