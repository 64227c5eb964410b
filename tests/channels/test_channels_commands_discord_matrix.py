"""Chat commands from Discord (text and slash commands) and Matrix: the one registry,
answered before any model, by the real agent runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.channels.channel_helpers import wait_for
from tests.channels.synapse import Synapse
from tests.channels.test_channels_discord import TOKEN, dc_config
from tests.channels.test_channels_matrix import bot_account, joined, mx_config, people
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Reply

from moltbot.commands import REGISTRY

__all__ = ["people"]  # a fixture used here

OWNER = "4242"


def discord_stack_config(llm: FakeOpenAI, fake: FakeDiscord, **discord: Any) -> dict[str, Any]:
    config = {**openai_config(llm.base_url, "m1", "m2"), **dc_config(fake, **discord)}
    return config


async def answer(bot: Any, push: Any) -> str:
    """Run ``push`` (a user action) and return the bot's next message."""
    before = len(bot.sent)
    await push
    sent = await bot.wait_sent(before + 1)
    return str(sent[before].content)


async def test_discord_slash_commands_come_from_the_registry(
    fake_discord: FakeDiscord, llm: FakeOpenAI, stack: Any
) -> None:
    bot = fake_discord.bot(TOKEN)
    bot.commands = [{"name": "old", "description": "left from before"}]
    agents, _ = await stack(discord_stack_config(llm, fake_discord, allowFrom=[OWNER]))
    await bot.wait_ready()
    await bot.wait(lambda: bot.commands and bot.commands[0]["name"] != "old")
    registered = {c["name"]: c for c in bot.commands}
    assert sorted(registered) == sorted(name for name, _ in REGISTRY.menu())
    assert {"new", "status", "stop", "model", "think", "compact"} <= set(registered)
    assert registered["status"]["description"] == REGISTRY.get("status").help  # type: ignore[union-attr]
    assert not registered["status"].get("options")  # takes no arguments
    [option] = registered["model"]["options"]
    assert option["name"] == "args" and option["type"] == 3 and not option.get("required")
    assert option["description"] == "/model [name|number]"

    # slash commands: a private acknowledgement, the answer in the channel
    status = await answer(bot, bot.push_slash("status"))
    assert "Model: fake/m1" in status and "Session: agent:main:main" in status
    assert bot.interaction_replies[-1]["data"]["content"] == "/status"
    assert bot.interaction_replies[-1]["data"]["flags"] & 64  # ephemeral
    switched = await answer(bot, bot.push_slash("model", args="fake/m2"))
    assert switched == "Model: fake/m2 for this session."
    assert bot.interaction_replies[-1]["data"]["content"] == "/model fake/m2"
    # an interaction that expired before its acknowledgement still runs
    acknowledged = len(bot.interaction_replies)
    whoami = await answer(bot, bot.push_slash("whoami", expired=True))
    assert whoami.startswith(f"You are discord:{OWNER}")
    assert len(bot.interaction_replies) == acknowledged

    # /stop aborts the reply in progress, /new starts a fresh session
    llm.push(Reply(hang=True))
    await bot.push_message("tell me a long story")
    await wait_for(lambda: llm.active, timeout=10)
    await bot.wait(lambda: bot.dm_channel(OWNER) in bot.typing)  # typing while it works
    assert (await answer(bot, bot.push_slash("stop"))) == "⏹ Stopped."
    store = agents.store("main")
    before = await store.get("agent:main:main")
    assert before is not None and before.model_override == "fake/m2"
    assert (await answer(bot, bot.push_message("/new"))) == "Started a new session."
    fresh = await store.get("agent:main:main")
    assert fresh is not None and fresh.session_id != before.session_id
    assert (await answer(bot, bot.push_message("/stop"))) == "Nothing to stop."
    assert len(llm.requests) == 1  # only the story reached the model


async def test_discord_guild_commands_owners_and_text_commands_off(
    fake_discord: FakeDiscord, llm: FakeOpenAI, stack: Any
) -> None:
    bot = fake_discord.bot(TOKEN)
    config = discord_stack_config(
        llm, fake_discord, allowFrom=[OWNER], groupPolicy="open", commands={"native": True}
    )
    config["commands"] = {"text": False}
    await stack(config)
    await bot.wait_ready()
    await bot.wait(lambda: bool(bot.commands))
    # with commands.text off, "/status" typed is ordinary text for the model ...
    llm.push(Reply(text="not a command here"))
    assert (await answer(bot, bot.push_message("/status"))) == "not a command here"
    # ... but the slash command still is one, in a guild channel too
    status = await answer(bot, bot.push_slash("status", channel="guild"))
    assert f"Session: agent:main:discord:channel:{bot.channel_id}" in status
    # a stranger's owner-only slash command in a guild: refused silently (as in groups)
    stranger = {"id": "999", "username": "eve", "discriminator": "0", "avatar": None}
    await bot.push_slash("new", channel="guild", author=stranger)
    whoami = await answer(bot, bot.push_slash("whoami", channel="guild"))
    assert whoami.startswith(f"You are discord:{OWNER}")
    assert len(bot.interaction_replies) == 3  # each acknowledged; only two answers sent
    assert [s.content.split()[0] for s in bot.sent[1:]] == ["Model:", "You"]
    assert len(llm.requests) == 1


async def test_discord_native_menu_off_clears_the_slash_commands(
    fake_discord: FakeDiscord, llm: FakeOpenAI, stack: Any
) -> None:
    bot = fake_discord.bot(TOKEN)
    bot.commands = [{"name": "old", "description": "left from before"}]
    await stack(discord_stack_config(llm, fake_discord, commands={"native": False}))
    await bot.wait_ready()
    await bot.wait(lambda: bot.commands == [])


async def test_matrix_commands_before_the_model(
    synapse: Synapse, people: Any, llm: FakeOpenAI, stack: Any, home: Path
) -> None:
    ann = people("ann")
    bob = people("bob")
    await ann.sync()
    bot_id, password = bot_account(synapse)
    config = {
        **openai_config(llm.base_url),
        **mx_config(synapse, bot_id, password, allowFrom=[ann.user_id], groupPolicy="open"),
    }
    agents, channels = await stack(config)
    room = await ann.dm(bot_id)
    await joined(channels, room)

    await ann.say(room, "/status")
    [(_, status)] = await ann.wait_messages(1)
    assert "Model: fake/m1" in status.body and "Session: agent:main:main" in status.body
    llm.push(Reply(hang=True))
    await ann.say(room, "tell me a long story")
    await wait_for(lambda: llm.active, timeout=30)
    await ann.say(room, "/stop")
    [_, (_, stopped)] = await ann.wait_messages(2)
    assert stopped.body == "⏹ Stopped."
    store = agents.store("main")
    before = await store.get("agent:main:main")
    await ann.say(room, "/new")
    [*_, (_, fresh)] = await ann.wait_messages(3)
    assert fresh.body == "Started a new session."
    after = await store.get("agent:main:main")
    assert before is not None and after is not None and after.session_id != before.session_id

    # in a room: the owner's command needs no mention; a stranger's /new gets nothing
    group = await ann.group(bot_id, bob.user_id)
    await joined(channels, group)
    await bob.sync()  # joins
    await bob.say(group, "/new")
    await ann.say(group, "/whoami")
    await ann.wait(lambda: any(e.sender == bot_id for r, e in ann.received if r == group))
    from_bot = [(r, e.body) for r, e in ann.received if e.sender == bot_id]
    assert len(from_bot) == 4  # nothing for bob's /new (it came first)
    where, whoami = from_bot[-1]
    assert where == group and whoami.startswith(f"You are matrix:{ann.user_id}")
    assert len(llm.requests) == 1  # only the story reached a model


async def test_discord_skill_slash_command(
    fake_discord: FakeDiscord, llm: FakeOpenAI, stack: Any, home: Path
) -> None:
    from tests.channels.test_channels_commands import write_tides

    write_tides(home)
    bot = fake_discord.bot(TOKEN)
    await stack(discord_stack_config(llm, fake_discord, allowFrom=[OWNER]))
    await bot.wait_ready()
    await bot.wait(lambda: any(c["name"] == "tides" for c in bot.commands or []))
    tides = next(c for c in bot.commands if c["name"] == "tides")
    assert tides["description"] == "Tide tables"
    [option] = tides["options"]  # the request, optional
    assert option["name"] == "args" and not option.get("required")
    llm.push(Reply("High at noon."))
    assert (await answer(bot, bot.push_slash("tides", args="Brest"))) == "High at noon."
    asked = str(llm.requests[-1]["body"]["messages"][-1]["content"])
    assert asked == 'Use the "tides" skill for this request.\n\nUser input:\nBrest'
