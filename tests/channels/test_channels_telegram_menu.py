"""Telegram's command menu by scope: the default scope lists what anyone may run, each
owner known by a numeric id gets the whole menu in their private chat; removed owners
lose theirs; a chat Telegram does not know is logged and skipped."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from tests.channels.channel_helpers import wait_for
from tests.channels.test_channels_agent_e2e import TOKEN, telegram_config
from tests.fakes.llm_openai import FakeOpenAI
from tests.fakes.telegram import FakeTelegram

OWNER = 4242
OTHER_OWNER = 5151
GUEST = 777
OWNER_ONLY = {"new", "reset", "stop", "compact"}


def names(menu: list[dict[str, Any]] | None) -> set[str]:
    return {item["command"] for item in menu or []}


def scopes(bot: Any, method: str) -> list[dict[str, Any]]:
    """The ``scope`` objects of every ``method`` call, as they came over the wire."""
    return [
        params.get("scope") or {"type": "default"} for name, params in bot.calls if name == method
    ]


async def test_owner_only_commands_only_in_the_owners_private_menu(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any
) -> None:
    bot = fake_telegram.bot(TOKEN)
    bot.chats |= {OWNER, GUEST}  # both wrote to the bot before
    await stack(
        telegram_config(llm, fake_telegram, dmPolicy="open", allowFrom=["*", str(OWNER), "@carol"])
    )
    await bot.wait_polling()

    public = names(bot.commands)
    assert {"help", "status", "whoami"} <= public
    assert not public & OWNER_ONLY
    assert set(bot.menus) == {OWNER}  # not the guest, not the owner known by name only
    assert OWNER_ONLY | {"help", "status"} <= names(bot.menus[OWNER])
    assert {"type": "chat", "chat_id": OWNER} in scopes(bot, "setMyCommands")
    assert {"type": "default"} in scopes(bot, "setMyCommands")

    # the menus agree with the answers
    await bot.push_dm(GUEST, "/new")
    [refusal] = await bot.wait_sent(1)
    assert refusal.text.startswith("⛔ /new is only for the owners")


async def test_everyone_an_owner_gets_the_whole_public_menu(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any
) -> None:
    bot = fake_telegram.bot(TOKEN)
    bot.chats.add(OWNER)
    config = telegram_config(llm, fake_telegram, allowFrom=[str(OWNER)])
    config["commands"] = {"useAccessGroups": False}
    await stack(config)
    await bot.wait_polling()
    assert OWNER_ONLY <= names(bot.commands)
    assert bot.menus == {}


async def test_removing_an_owner_deletes_their_menu(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any
) -> None:
    from moltbot.config.schema import Config

    bot = fake_telegram.bot(TOKEN)
    bot.chats |= {OWNER, OTHER_OWNER}
    config = telegram_config(llm, fake_telegram, dmPolicy="open", allowFrom=["*"])
    config["commands"] = {"ownerAllowFrom": [f"telegram:{OWNER}", f"tg:{OTHER_OWNER}"]}
    _, channels = await stack(config)
    await bot.wait_polling()
    assert set(bot.menus) == {OWNER, OTHER_OWNER}

    # only commands.ownerAllowFrom changes: the account's own section does not
    config["commands"] = {"ownerAllowFrom": [f"telegram:{OWNER}"]}
    await channels.reconfigure(Config.model_validate(config))
    await channels.wait_running(10)
    await wait_for(lambda: OTHER_OWNER not in bot.menus)
    assert {"type": "chat", "chat_id": OTHER_OWNER} in scopes(bot, "deleteMyCommands")
    assert set(bot.menus) == {OWNER} and OWNER_ONLY <= names(bot.menus[OWNER])
    assert not names(bot.commands) & OWNER_ONLY

    # and the one no longer an owner is refused like any guest
    await bot.push_dm(OTHER_OWNER, "/new")
    [refusal] = await bot.wait_sent(1)
    assert refusal.text.startswith("⛔ /new is only for the owners")


async def test_an_unknown_chat_is_logged_and_the_rest_registered(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any, caplog: Any
) -> None:
    caplog.set_level(logging.WARNING, logger="moltbot.channels.telegram")
    bot = fake_telegram.bot(TOKEN)
    bot.chats.add(OTHER_OWNER)  # OWNER never wrote to the bot: "chat not found"
    config = telegram_config(llm, fake_telegram, allowFrom=[str(OWNER), str(OTHER_OWNER)])
    await stack(config)
    await bot.wait_polling()
    assert set(bot.menus) == {OTHER_OWNER}
    assert bot.commands and not names(bot.commands) & OWNER_ONLY
    assert any(
        f"chat {OWNER}" in r.getMessage() and "chat not found" in r.getMessage().lower()
        for r in caplog.records
    )

    # once they write, the chat exists and they get their menu
    await bot.push_dm(OWNER, "/whoami")
    await bot.wait_sent(1)
    assert OWNER_ONLY <= names(bot.menus[OWNER])


async def test_an_owner_approved_by_pairing_gets_the_menu_on_their_next_message(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any, home: Path
) -> None:
    from moltbot.channels.pairing import PairingStore

    bot = fake_telegram.bot(TOKEN)
    await stack(telegram_config(llm, fake_telegram))
    await bot.wait_polling()
    await bot.push_dm(OWNER, "hi")
    [pairing] = await bot.wait_sent(1)
    assert bot.menus == {}
    code = pairing.text.split("Pairing code: ")[1].split()[0]
    store = PairingStore(home / ".clawdbot" / "credentials", "telegram")
    store.approve(code)

    await bot.push_dm(OWNER, "/whoami")
    await bot.wait_sent(2)
    assert OWNER_ONLY <= names(bot.menus[OWNER])

    store.disallow(str(OWNER))
    await bot.push_dm(OWNER, "hello again")  # a stranger again: a pairing code, no menu
    await bot.wait_sent(3)
    assert bot.menus == {}


async def test_a_broken_scopes_file_loses_nothing(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any, home: Path
) -> None:
    """Garbage where the list of scoped chats should be: the menus are registered
    anyway and the file is written afresh; an id with a leading zero (which the
    commands would not recognise as the sender's) gets no menu."""
    bot = fake_telegram.bot(TOKEN)
    bot.chats |= {OWNER, OTHER_OWNER}
    path = home / ".clawdbot" / "telegram" / "command-scopes-default.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"chats": [true, "x", -5', encoding="utf-8")
    config = telegram_config(llm, fake_telegram, allowFrom=[str(OWNER), f"0{OTHER_OWNER}"])
    await stack(config)
    await bot.wait_polling()
    assert set(bot.menus) == {OWNER}
    assert json.loads(path.read_text(encoding="utf-8")) == {"version": 1, "chats": [OWNER]}
