"""Chat commands from Telegram: answered before any model, owners only where they change
state, a group owner's command needs no mention, the native command menu."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.channels.channel_helpers import wait_for
from tests.channels.test_channels_agent_e2e import TOKEN, telegram_config
from tests.fakes.llm_openai import FakeOpenAI
from tests.fakes.llm_script import Reply
from tests.fakes.telegram import FakeTelegram

OWNER = 4242
GUEST = 777


def two_models(llm: FakeOpenAI, fake: FakeTelegram, **telegram: Any) -> dict[str, Any]:
    config = telegram_config(llm, fake, **telegram)
    config["models"]["providers"]["fake"]["models"] = [
        {"id": "m1", "contextWindow": 32000},
        {"id": "m2"},
    ]
    return config


async def ask(bot: Any, text: str, user: int = OWNER) -> str:
    """Send ``text`` as a DM and return the bot's next answer."""
    before = len(bot.sent)
    await bot.push_dm(user, text)
    sent = await bot.wait_sent(before + 1)
    return str(sent[before].text)


async def test_every_command_from_a_telegram_owner(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any, home: Path
) -> None:
    bot = fake_telegram.bot(TOKEN)
    agents, _ = await stack(two_models(llm, fake_telegram, allowFrom=[str(OWNER)]))
    await bot.wait_polling()
    store = agents.store("main")

    assert (await ask(bot, "hello")) == "echo: hello"
    help_text = await ask(bot, "/help")
    assert "/status" in help_text and "/compact" in help_text and "🔒" in help_text

    status = await ask(bot, "/status")
    assert "Model: fake/m1" in status and "Fallbacks" not in status
    assert "/ 32k tokens" in status and "Session: agent:main:main" in status
    assert "Usage: 12 in / 7 out" in status and "Queue: idle" in status

    models = await ask(bot, "/model")
    assert "1) fake/m1" in models and "2) fake/m2" in models
    assert (await ask(bot, "/model 2")) == "Model: fake/m2 for this session."
    assert (await ask(bot, "/model nope/")).startswith("⚠️ model")
    assert (await ask(bot, "/think high")) == "Think: high."
    assert (await ask(bot, "/think loud")).startswith("⚠️ unknown level 'loud'")
    assert (await ask(bot, "/verbose")) == "Verbose: on."
    assert (await ask(bot, "/whoami")).startswith(f"You are telegram:{OWNER} (Ann), owner.")
    entry = await store.get("agent:main:main")
    assert entry is not None
    assert (entry.model_override, entry.thinking_level, entry.verbose_level) == (
        "fake/m2",
        "high",
        "on",
    )
    status = await ask(bot, "/status")
    assert "Model: fake/m2 (set with /model)" in status and "Think: high · Verbose: on" in status

    # no command ever reached the model: one request so far (for "hello")
    assert len(llm.requests) == 1
    assert (await ask(bot, "and now?")) == "echo: and now?"
    request = llm.requests[-1]["body"]
    assert request["model"] == "m2"
    sent_text = json.dumps(request["messages"])
    assert "/status" not in sent_text and "Model: fake" not in sent_text
    # the exchanges are in the transcript, marked as commands
    read = await store.read(entry)
    commands = [e["message"] for e in read.entries if e["message"].get("command")]
    assert [c["content"] for c in commands][:2] == ["/help", "/status"]
    notes = [e["message"] for e in read.entries if e["message"].get("stopReason") == "command"]
    assert notes and notes[0]["content"][0]["text"] == help_text

    # /stop aborts the reply in progress
    llm.push(Reply(hang=True))
    await bot.push_dm(OWNER, "tell me a long story")
    await wait_for(lambda: llm.active, timeout=10)
    assert (await ask(bot, "/stop")) == "⏹ Stopped."
    assert (await ask(bot, "/stop")) == "Nothing to stop."

    before = entry.session_id
    assert (await ask(bot, "/new")) == "Started a new session."
    fresh = await store.get("agent:main:main")
    assert fresh is not None and fresh.session_id != before
    assert (await ask(bot, "/reset fake/m1")) == "Started a new session. Model: fake/m1."


async def test_owner_only_commands_refuse_other_senders(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any
) -> None:
    bot = fake_telegram.bot(TOKEN)
    agents, _ = await stack(
        telegram_config(llm, fake_telegram, dmPolicy="open", allowFrom=["*", str(OWNER)])
    )
    await bot.wait_polling()
    refusal = await ask(bot, "/new", user=GUEST)
    assert refusal == "⛔ /new is only for the owners of this assistant."
    assert (await ask(bot, "/think high", user=GUEST)).startswith("⛔ /think")
    assert (await ask(bot, "/model fake/m1", user=GUEST)).startswith("⛔ /model")
    assert "Model: fake/m1" in await ask(bot, "/status", user=GUEST)
    assert "/new" not in await ask(bot, "/help", user=GUEST)
    assert (await ask(bot, "/whoami", user=GUEST)).endswith(
        "not an owner.\nSession: agent:main:main"
    )
    entry = await agents.store("main").get("agent:main:main")
    assert entry is not None and entry.thinking_level is None
    assert (await ask(bot, "/think high", user=OWNER)) == "Think: high."
    assert llm.requests == []


async def test_owner_allow_from_and_access_groups(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any
) -> None:
    bot = fake_telegram.bot(TOKEN)
    config = telegram_config(llm, fake_telegram, dmPolicy="open", allowFrom=["*", str(OWNER)])
    config["commands"] = {"ownerAllowFrom": [f"telegram:{GUEST}", "slack:U999"]}
    await stack(config)
    await bot.wait_polling()
    assert (await ask(bot, "/think low", user=GUEST)) == "Think: low."
    assert (await ask(bot, "/think low", user=OWNER)).startswith("⛔")  # only the listed owners


async def test_commands_in_a_group(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any
) -> None:
    bot = fake_telegram.bot(TOKEN)
    groups = {"-100500": {"requireMention": True}}
    await stack(
        telegram_config(
            llm, fake_telegram, allowFrom=[str(OWNER)], groupPolicy="open", groups=groups
        )
    )
    await bot.wait_polling()
    # an owner's command needs no mention; one addressed to another bot is not ours
    await bot.push_group(-100500, OWNER, "/status")
    [status] = await bot.wait_sent(1)
    assert "Session: agent:main:telegram:group:-100500" in status.text
    other = await bot.push_group(-100500, OWNER, "/status@SomeOtherBot")
    refused = await bot.push_group(-100500, GUEST, "/new", username="guest")
    # barrier: a later update is confirmed only after these were handled
    await bot.wait_confirmed(refused)
    await bot.wait_confirmed(other)
    await bot.push_group(-100500, OWNER, f"/whoami@{bot.username}")
    sent = await bot.wait_sent(2)
    assert sent[1].text.startswith(f"You are telegram:{OWNER}")
    assert len(bot.sent) == 2  # nothing for /status@SomeOtherBot, nothing for the guest's /new
    assert llm.requests == []


async def test_native_command_menu(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any
) -> None:
    bot = fake_telegram.bot(TOKEN)
    bot.chats.add(OWNER)
    await stack(telegram_config(llm, fake_telegram, allowFrom=[str(OWNER)]))
    await bot.wait_polling()
    assert bot.commands is not None
    menu = {c["command"]: c["description"] for c in bot.menus[OWNER]}  # the owner's own
    assert {"help", "status", "new", "stop", "model", "think", "compact"} <= set(menu)
    assert menu["status"] == "Model, tokens used of the window, session, queue"
    assert {"help", "status"} <= {c["command"] for c in bot.commands}  # everyone's


async def test_native_menu_off_clears_it(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any
) -> None:
    bot = fake_telegram.bot(TOKEN)
    bot.commands = [{"command": "old", "description": "left from before"}]
    config = telegram_config(llm, fake_telegram, commands={"native": False})
    await stack(config)
    await bot.wait_polling()
    assert bot.commands == []


async def test_native_menu_follows_a_live_config_change(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any, home: Path
) -> None:
    from moltbot.config.schema import Config

    bot = fake_telegram.bot(TOKEN)
    config = telegram_config(llm, fake_telegram, allowFrom=[str(OWNER)])
    _, channels = await stack(config)
    await bot.wait_polling()
    assert bot.commands
    # commands.native is a top-level key: the account's own section did not change
    config["commands"] = {"native": False}
    await channels.reconfigure(Config.model_validate(config))
    await channels.wait_running(10)
    await wait_for(lambda: bot.commands == [])
    assert "Model: fake/m1" in await ask(bot, "/status")  # the account answers again


async def test_compact_from_telegram(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any
) -> None:
    from tests.agents.test_compaction import WORDS, summariser

    llm.responder = summariser
    bot = fake_telegram.bot(TOKEN)
    config = telegram_config(llm, fake_telegram, allowFrom=[str(OWNER)])
    config["agents"] = {"defaults": {"compaction": {"mode": "manual", "keepRecentTokens": 200}}}
    agents, _ = await stack(config)
    await bot.wait_polling()
    assert (await ask(bot, "/compact")).startswith("Nothing to compact")
    for turn in range(6):
        assert (await ask(bot, f"turn {turn}: {WORDS}")).startswith(f"echo: turn {turn}")
    reply = await ask(bot, "/compact keep the sea")
    assert reply.startswith("🧹 Compacted: ") and "the originals stay" in reply
    summary_request = llm.requests[-1]["body"]["messages"]
    assert "keep the sea" in str(summary_request)
    entry = await agents.store("main").get("agent:main:main")
    assert entry is not None and entry.compaction_count == 1
    assert "🧹 1 compaction" in await ask(bot, "/status")


def write_tides(home: Path) -> None:
    skill = home / "clawd-default" / "skills" / "tides"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text("---\nname: tides\ndescription: Tide tables\n---\nAsk.")


async def test_skill_commands_from_telegram(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any, home: Path
) -> None:
    write_tides(home)
    bot = fake_telegram.bot(TOKEN)
    await stack(telegram_config(llm, fake_telegram, allowFrom=[str(OWNER)]))
    await bot.wait_polling()
    assert bot.commands is not None
    assert {"command": "tides", "description": "Tide tables"} in bot.commands
    assert "/tides — Tide tables" in await ask(bot, "/help")
    llm.push(Reply("High at noon."))
    assert await ask(bot, "/tides Brest") == "High at noon."
    asked = str(llm.requests[-1]["body"]["messages"][-1]["content"])
    assert asked == 'Use the "tides" skill for this request.\n\nUser input:\nBrest'


async def test_native_skills_off_keeps_them_out_of_the_menu(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any, home: Path
) -> None:
    write_tides(home)
    bot = fake_telegram.bot(TOKEN)
    config = telegram_config(llm, fake_telegram, allowFrom=[str(OWNER)])
    config["commands"] = {"nativeSkills": False}
    await stack(config)
    await bot.wait_polling()
    assert bot.commands and "tides" not in {c["command"] for c in bot.commands}


async def test_text_commands_off_keeps_the_native_menu_working(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any
) -> None:
    bot = fake_telegram.bot(TOKEN)
    config = telegram_config(llm, fake_telegram, allowFrom=[str(OWNER)])
    config["commands"] = {"text": False}  # native stays "auto": on for Telegram
    await stack(config)
    await bot.wait_polling()
    assert "Model: fake/m1" in await ask(bot, "/status")  # a command of the menu
    assert llm.requests == []


async def test_text_and_native_commands_off_send_commands_to_the_model(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any
) -> None:
    bot = fake_telegram.bot(TOKEN)
    config = telegram_config(llm, fake_telegram, allowFrom=[str(OWNER)])
    config["commands"] = {"text": False, "native": False}
    await stack(config)
    await bot.wait_polling()
    assert await ask(bot, "/status") == "echo: /status"
