"""Channels + the real agent runtime + a stand-in LLM, wired as the gateway wires them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.channels.channel_helpers import (
    wait_for,
)
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Reply
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram, parse_html, utf16_len

from moltbot.channels.pairing import PairingStore

TOKEN = "555:agent-e2e"


def telegram_config(llm: FakeOpenAI, fake: FakeTelegram, **telegram: Any) -> dict[str, Any]:
    """The stand-in model and a Telegram bot (``TOKEN``) on the stand-in Bot API."""
    channel = {"botToken": TOKEN, "apiRoot": fake.url, "pollTimeoutSeconds": 1, **telegram}
    return {**openai_config(llm.base_url), "channels": {"telegram": channel}}


async def test_telegram_dm_pairing_then_agent_reply(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any, home: Path
) -> None:
    bot = fake_telegram.bot(TOKEN)
    agents, _ = await stack(telegram_config(llm, fake_telegram))
    await bot.wait_polling()

    await bot.push_dm(4242, "hi there")
    [pairing] = await bot.wait_sent(1)
    code = pairing.text.split("Pairing code: ")[1].split()[0]
    assert llm.requests == []
    PairingStore(home / ".clawdbot" / "credentials", "telegram").approve(code)

    long_answer = "**Plan**\n\n" + "\n\n".join(f"Step {i}: " + "do things " * 40 for i in range(20))
    llm.push(Reply(long_answer))
    await bot.push_dm(4242, "make me a plan")
    # barrier: the next message in the same session is answered after every chunk of this one
    llm.push(Reply("you are welcome"))
    await bot.push_dm(4242, "thanks")
    await wait_for(lambda: bot.sent and bot.sent[-1].text == "you are welcome", timeout=15)
    replies = bot.sent[1:-1]
    assert len(replies) >= 2
    assert replies[0].params["text"].startswith("<b>Plan</b>")
    assert all(utf16_len(parse_html(r.params["text"])) <= 4096 for r in replies)
    assert sum(r.text.count("Step ") for r in replies) == 20
    assert len(llm.requests) == 2
    user_turn = llm.requests[0]["body"]["messages"][-1]
    assert "make me a plan" in json.dumps(user_turn)
    entry = await agents.store("main").get("agent:main:main")
    assert entry is not None and entry.origin is not None
    assert entry.origin.channel == "telegram" and entry.origin.to == "4242"


async def test_agent_uses_the_message_tool(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any
) -> None:
    bot = fake_telegram.bot(TOKEN)
    await stack(telegram_config(llm, fake_telegram, allowFrom=["4242"]))
    await bot.wait_polling()
    llm.push(Reply(tool_calls=[("message", {"message": "a side note"})]), Reply("NO_REPLY"))
    await bot.push_dm(4242, "ping me via the tool")
    [sent] = await bot.wait_sent(1)
    assert sent.text == "a side note" and sent.chat_id == "4242"
    # barrier: the next turn of the same session is answered after the first one ended
    llm.push(Reply("second turn"))
    await bot.push_dm(4242, "and now?")
    await wait_for(lambda: len(bot.sent) >= 2, timeout=15)
    assert [s.text for s in bot.sent] == ["a side note", "second turn"]  # NO_REPLY: nothing
    tools = {t["function"]["name"] for t in llm.requests[0]["body"]["tools"]}
    assert "message" in tools


async def test_slack_mention_reaches_agent(
    fake_slack: FakeSlack, llm: FakeOpenAI, stack: Any
) -> None:
    ws = fake_slack.workspace()
    config = {
        **openai_config(llm.base_url),
        "channels": {
            "slack": {
                "botToken": ws.bot_token,
                "appToken": ws.app_token,
                "apiUrl": fake_slack.api_url,
                "allowFrom": ["U0ANN"],
            }
        },
    }
    await stack(config)
    await ws.wait_connected()
    llm.push(Reply("Deploy is **green**."))
    await ws.push_event(
        ws.event(
            channel="C0OPS",
            user="U0ANN",
            channel_type="channel",
            text=f"<@{ws.bot_user_id}> how is the deploy?",
        )
    )
    [reply] = await ws.wait_posted(1)
    assert reply["channel"] == "C0OPS" and reply["text"] == "Deploy is *green*."


async def test_a_forum_topic_gets_its_session_and_its_system_prompt(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any
) -> None:
    bot = fake_telegram.bot(TOKEN)
    forum = {
        "requireMention": False,
        "systemPrompt": "Group rule: be brief.",
        "topics": {"42": {"systemPrompt": "Topic rule: answer in French."}},
    }
    agents, _ = await stack(
        telegram_config(llm, fake_telegram, groupPolicy="open", groups={"-100777": forum})
    )
    await bot.wait_polling()
    chat = {"id": -100777, "type": "supergroup", "title": "Forum", "is_forum": True}
    sender = {"id": 4242, "is_bot": False, "first_name": "Ann"}
    llm.push(Reply("Bonjour."))
    await bot.push(
        {
            "message": bot.message(
                chat=chat,
                sender=sender,
                text="hello topic",
                message_thread_id=42,
                is_topic_message=True,
            )
        }
    )
    [reply] = await bot.wait_sent(1)
    assert reply.text == "Bonjour." and str(reply.params["message_thread_id"]) == "42"
    system = json.dumps(llm.requests[0]["body"]["messages"][0])
    assert "Topic rule: answer in French." in system
    entry = await agents.store("main").get("agent:main:telegram:group:-100777:topic:42")
    assert entry is not None and entry.origin is not None
    assert entry.origin.group_system_prompt == "Topic rule: answer in French."
    assert entry.origin.to == "-100777:topic:42" and entry.origin.thread_id == "42"
