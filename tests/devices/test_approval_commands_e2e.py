"""``/approve`` and ``/deny`` are chat commands: a real gateway with the stand-in model
and Telegram. Answered before any model, while the session's run waits for them (never
queued behind it); a group cannot approve; an unknown id gets a clear answer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.agents.gateway_agents import write_config
from tests.channels.channel_helpers import running, wait_for
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Reply
from tests.fakes.telegram import FakeBot, FakeTelegram

from gateway_harness import WsClient, start_gateway, ws_client

TOKEN = "901:approvals"
OWNER = 4242
GUEST = 777
GROUP = -100500
NO_EXTRAS = {"CLAWDBOT_SKIP_BROWSER_CONTROL_SERVER": "1", "CLAWDBOT_SKIP_CANVAS_HOST": "1"}


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key="sk-test") as server:
        yield server


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with running(FakeTelegram()) as fake:
        yield fake


@pytest.fixture
async def gateway(home: Path, llm: FakeOpenAI, telegram: FakeTelegram) -> AsyncIterator[Any]:
    """A gateway whose exec asks an operator, with a Telegram bot: ``OWNER`` is on the
    allowlist, DMs are open to anyone, the group ``GROUP`` needs no mention."""
    config = openai_config(llm.base_url)
    config["tools"] = {"exec": {"approvalTimeoutSeconds": 60}}
    config["channels"] = {
        "telegram": {
            "botToken": TOKEN,
            "apiRoot": telegram.url,
            "pollTimeoutSeconds": 1,
            "dmPolicy": "open",
            "allowFrom": ["*", str(OWNER)],
            "groupPolicy": "open",
            "groups": {str(GROUP): {"requireMention": False}},
        }
    }
    write_config(home, "main", config)
    gw = start_gateway(home, "main", env=NO_EXTRAS)
    try:
        yield gw
    finally:
        gw.stop()


def execs(*commands: str) -> list[Reply]:
    return [Reply("", tool_calls=[("exec", {"command": c})]) for c in commands] + [Reply("done")]


def requested(*seen: str) -> Any:
    """An approval request other than those ``seen``."""
    return lambda f: f["event"] == "exec.approval.requested" and f["payload"]["id"] not in seen


def decisions(op: WsClient) -> list[tuple[str, str]]:
    return [
        (f["payload"]["id"], f["payload"]["decision"])
        for f in op.events
        if f["event"] == "exec.approval.resolved"
    ]


async def said(bot: FakeBot, count: int, chat: int) -> str:
    """The text of the ``count``-th message the bot sent to ``chat``."""
    sent = await bot.wait_sent(count, timeout=60, chat_id=chat)
    return sent[count - 1].text


async def test_a_telegram_dm_approves_and_denies_while_the_run_waits(
    gateway: Any, llm: FakeOpenAI, telegram: FakeTelegram
) -> None:
    bot = telegram.bot(TOKEN)
    await bot.wait_polling(30)
    async with ws_client(gateway.url, gateway.token) as op:
        llm.push(*execs("seq 3", "seq 2"))
        await bot.push_dm(OWNER, "count")
        first = (await op.wait_event(requested(), timeout=60))["payload"]
        prompt = await said(bot, 1, OWNER)
        assert f"Reply /approve {first['id']} (once)" in prompt and "seq 3" in prompt
        # the run holds the session while it waits: the answer must not queue behind it
        # (the run goes on at once, so its next message may come before the answer)
        await bot.push_dm(OWNER, f"/approve {first['id'][:8]} allow-once")
        await _sees(bot, f"exec approval {first['id']}: allow-once")
        second = (await op.wait_event(requested(first["id"]), timeout=60))["payload"]
        await _sees(bot, f"Reply /approve {second['id']} (once)")
        await bot.push_dm(OWNER, "/deny")
        await _sees(bot, f"exec approval {second['id']}: deny")
        await wait_for(lambda: any(s.text == "done" for s in bot.sent), 60)
        assert decisions(op) == [(first["id"], "allow-once"), (second["id"], "deny")]
        assert second["request"]["sessionKey"] == "agent:main:main"
        tool_results = [
            str(m["content"]) for m in llm.requests[-1]["body"]["messages"] if m["role"] == "tool"
        ]
        assert tool_results[0].splitlines()[1:4] == ["1", "2", "3"]
        assert "not approved by an operator" in tool_results[1]
        assert len(llm.requests) == 3  # the turn's three model calls; no command reached it


async def test_approve_with_an_unknown_id_answers_and_reaches_no_model(
    gateway: Any, llm: FakeOpenAI, telegram: FakeTelegram
) -> None:
    bot = telegram.bot(TOKEN)
    await bot.wait_polling(30)
    help_text = await _dm(bot, "/help")
    assert "/approve [id] [allow-once|allow-always] — " in help_text
    assert "/deny [id] — " in help_text
    answer = await _dm(bot, "/approve 0badc0de")
    assert answer == "No exec approval 0badc0de waits in this conversation."
    assert await _dm(bot, "/approve") == "No exec approval waits in this conversation."
    assert (await _dm(bot, "/deny 0badc0de always")).startswith("⚠️ usage: /deny [id]")
    async with ws_client(gateway.url, gateway.token, client_id="webchat-ui", mode="webchat") as op:
        reply = await op.call(
            "chat.send",
            {
                "sessionKey": "main",
                "message": "/approve 0badc0de",
                "idempotencyKey": str(uuid.uuid4()),
            },
        )
        assert reply["command"] == "approve" and "approval" not in reply
        assert reply["reply"] == "No exec approval 0badc0de waits in this conversation."
    # barrier: the next message reaches the model, and it is the first one that does
    assert await _dm(bot, "hello") == "echo: hello"
    assert len(llm.requests) == 1


async def test_a_group_cannot_approve_and_a_guest_is_refused(
    gateway: Any, llm: FakeOpenAI, telegram: FakeTelegram
) -> None:
    bot = telegram.bot(TOKEN)
    await bot.wait_polling(30)
    async with ws_client(gateway.url, gateway.token) as op:
        llm.push(*execs("seq 3"))
        await bot.push_group(GROUP, OWNER, "count for us")
        pending = (await op.wait_event(requested(), timeout=60))["payload"]
        assert pending["request"]["sessionKey"] == f"agent:main:telegram:group:{GROUP}"
        prompt = await said(bot, 1, GROUP)
        assert f"moltbot approvals approve {pending['id']}" in prompt
        assert "Reply /approve" not in prompt
        await bot.push_group(GROUP, GUEST, f"/approve {pending['id']}", username="guest")
        # a guest's owner-only command is dropped, as in any group; the owner's, sent
        # after it, is the barrier: the next message is the refusal of the owner's
        await bot.push_group(GROUP, OWNER, f"/approve {pending['id']} allow-always")
        refusal = await said(bot, 2, GROUP)
        assert refusal.startswith("⛔ Exec approvals cannot be answered in a group")
        # a DM is another session: the group's request is not answered from there either
        assert await _dm(bot, f"/approve {pending['id'][:8]}") == (
            f"No exec approval {pending['id'][:8]} waits in this conversation."
        )
        assert decisions(op) == []
        await op.call("exec.approval.resolve", {"id": pending["id"], "decision": "deny"})
        assert await said(bot, 3, GROUP) == "done"
        assert decisions(op) == [(pending["id"], "deny")]
        assert len(llm.requests) == 2  # the turn's two model calls; no /approve reached it


async def _dm(bot: FakeBot, text: str, user: int = OWNER) -> str:
    """Send ``text`` as a DM from ``user`` and return the bot's next message to them."""
    before = len([s for s in bot.sent if s.chat_id == str(user)])
    await bot.push_dm(user, text)
    await wait_for(lambda: len([s for s in bot.sent if s.chat_id == str(user)]) > before, 60)
    return [s for s in bot.sent if s.chat_id == str(user)][before].text


async def _sees(bot: FakeBot, text: str, user: int = OWNER) -> None:
    """Wait until the bot sent ``user`` a message with ``text`` in it."""
    await wait_for(lambda: any(s.chat_id == str(user) and text in s.text for s in bot.sent), 60)


async def test_the_prompt_goes_to_the_chat_whose_message_ran_the_command(
    gateway: Any, llm: FakeOpenAI, telegram: FakeTelegram
) -> None:
    """The session exists before the DM's first turn (a command created it, so it has no
    recorded origin): the prompt still reaches the chat whose message started the run."""
    bot = telegram.bot(TOKEN)
    await bot.wait_polling(30)
    async with ws_client(gateway.url, gateway.token) as op:
        assert "/approve" in await _dm(bot, "/help")
        llm.push(*execs("seq 3"))
        await bot.push_dm(OWNER, "count")
        pending = (await op.wait_event(requested(), timeout=60))["payload"]
        await _sees(bot, f"Reply /approve {pending['id']} (once)")
        await bot.push_dm(OWNER, f"/approve {pending['id']}")
        await wait_for(lambda: any(s.text == "done" for s in bot.sent), 60)
        assert decisions(op) == [(pending["id"], "allow-once")]
