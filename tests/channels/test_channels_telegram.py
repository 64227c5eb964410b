"""Telegram against the stand-in Bot API server, through python-telegram-bot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.channels.channel_helpers import (
    EchoDispatcher,
    channels_status,
    serving_webhooks,
    supervisor_ended,
    wait_for,
)
from tests.fakes.media import JPEG, png
from tests.fakes.telegram import FakeTelegram, parse_html, utf16_len

from gateway_harness import near_misses
from moltbot.channels.pairing import PairingStore
from moltbot.channels.types import AccountState, OutboundMessage

TOKEN = "123456:AAA-test-token"


def tg_config(fake: FakeTelegram, **extra: Any) -> dict[str, Any]:
    return {
        "channels": {
            "telegram": {"botToken": TOKEN, "apiRoot": fake.url, "pollTimeoutSeconds": 1, **extra}
        }
    }


async def test_stranger_gets_pairing_code_then_approved_dm_reaches_agent(
    fake_telegram: FakeTelegram, start_manager: Any, home: Path
) -> None:
    bot = fake_telegram.bot(TOKEN)
    agent = EchoDispatcher()
    manager = await start_manager(tg_config(fake_telegram), dispatcher=agent)
    await bot.wait_polling()

    await bot.push_dm(4242, "hello bot")
    [pairing] = await bot.wait_sent(1, chat_id=4242)
    assert "Pairing code:" in pairing.text
    assert "Your Telegram user id: 4242" in pairing.text
    assert "parse_mode" not in pairing.params
    code = pairing.text.split("Pairing code: ")[1].split()[0]
    assert len(code) == 8 and not set(code) & set("01OI")
    assert f"moltbot pairing approve telegram {code}" in pairing.text
    assert agent.calls == []

    # a second message keeps the same request and sends no new code
    again = await bot.push_dm(4242, "hello again")
    await bot.wait_confirmed(again)  # barrier: handled (a code would have been sent by now)
    assert len(bot.sent) == 1 and agent.calls == []
    store = PairingStore(home / ".clawdbot" / "credentials", "telegram")
    [request] = store.pending()
    assert request.code == code and request.id == "4242"

    store.approve(code)
    allow = json.loads((home / ".clawdbot" / "credentials" / "telegram-allowFrom.json").read_text())
    assert allow == {"version": 1, "allowFrom": ["4242"]}

    await bot.push_dm(4242, "what is **up**?")
    sent = await bot.wait_sent(2, chat_id=4242)
    assert [s.text for s in bot.sent] == [pairing.text, "echo: what is up?"]
    assert agent.calls[-1]["session_key"] == "agent:main:main"
    assert agent.calls[-1]["text"] == "what is **up**?"
    origin = agent.calls[-1]["origin"]
    assert origin.channel == "telegram" and origin.sender == "telegram:4242"
    assert origin.dump()["from"] == "telegram:4242" and origin.dump()["provider"] == "telegram"
    assert sent[1].params["parse_mode"] == "HTML"
    assert sent[1].params["text"] == "echo: what is <b>up</b>?"
    status = channels_status(manager)["channelAccounts"]["telegram"][0]
    assert status["state"] == "running" and status["connected"] is True
    assert status["bot"]["username"] == "molty_bot"
    assert status["lastInboundAt"] and status["lastOutboundAt"]


async def test_long_reply_is_split_and_formatted(
    fake_telegram: FakeTelegram, start_manager: Any
) -> None:
    bot = fake_telegram.bot(TOKEN)
    code = "\n".join(f"print({i})  # {'x' * 30}" for i in range(150))
    long_reply = (
        "# Report\n\n"
        + ("Some **bold** words & <angle> text. " * 120)
        + "\n\n```python\n"
        + code
        + "\n```\n\nThe end."
    )
    agent = EchoDispatcher(reply=lambda text: long_reply)
    await start_manager(tg_config(fake_telegram, allowFrom=["4242"]), dispatcher=agent)
    await bot.wait_polling()

    await bot.push_dm(4242, "report please")
    await wait_for(lambda: any("The end." in s.text for s in bot.sent))
    sent = bot.sent
    assert len(sent) >= 3
    for message in sent:
        assert message.params["parse_mode"] == "HTML"
        assert utf16_len(parse_html(message.params["text"])) <= 4096
    joined = "\n".join(s.text for s in sent)
    assert joined.count("print(149)") == 1 and "print(0)" in joined
    assert sent[0].params["text"].startswith("<b>Report</b>")
    # the code block was cut inside: closed in one message and reopened in the next
    code_messages = [s.params["text"] for s in sent if "print(" in s.text]
    assert len(code_messages) >= 2
    assert all(m.count("<pre>") + m.count("<pre><code") >= 1 for m in code_messages)
    assert all(m.count("<pre") == m.count("</pre>") for m in code_messages)


async def test_rejected_formatting_falls_back_to_plain_text(
    fake_telegram: FakeTelegram, start_manager: Any
) -> None:
    bot = fake_telegram.bot(TOKEN)
    bot.reject_html = 1
    agent = EchoDispatcher(reply=lambda text: "a **bold** claim")
    await start_manager(tg_config(fake_telegram, allowFrom=["4242"]), dispatcher=agent)
    await bot.wait_polling()
    await bot.push_dm(4242, "hi")
    [sent] = await bot.wait_sent(1)
    assert "parse_mode" not in sent.params
    assert sent.text == "a **bold** claim"


async def test_groups_need_a_mention_and_an_allowed_sender(
    fake_telegram: FakeTelegram, start_manager: Any
) -> None:
    bot = fake_telegram.bot(TOKEN)
    agent = EchoDispatcher()
    await start_manager(tg_config(fake_telegram, allowFrom=["4242"]), dispatcher=agent)
    await bot.wait_polling()

    await bot.push_group(-1001, 4242, "just chatting")
    eve = await bot.push_group(-1001, 777, "@molty_bot let me in", first_name="Eve", username="eve")
    await bot.wait_confirmed(eve)  # barrier: both handled, in order
    assert agent.calls == [] and bot.sent == []

    update = await bot.push_group(-1001, 4242, "@molty_bot summarize please")
    [reply] = await bot.wait_sent(1)
    assert reply.chat_id == "-1001"
    assert reply.params["reply_parameters"]["message_id"] == update["message"]["message_id"]
    call = agent.calls[0]
    assert call["session_key"] == "agent:main:telegram:group:-1001"
    # the unmentioned message came along as context
    assert "[Chat messages since your last reply - for context]" in call["text"]
    assert "Ann (4242): just chatting" in call["text"]
    assert call["text"].endswith("Ann (4242): summarize please")


async def test_group_allowlist_and_require_mention_off(
    fake_telegram: FakeTelegram, start_manager: Any
) -> None:
    bot = fake_telegram.bot(TOKEN)
    agent = EchoDispatcher()
    groups = {"-1002": {"requireMention": False}}
    await start_manager(
        tg_config(fake_telegram, groupPolicy="open", groups=groups), dispatcher=agent
    )
    await bot.wait_polling()
    await bot.push_group(-1001, 5, "not an allowed group @molty_bot")
    await bot.push_group(-1002, 5, "no mention needed here")
    [reply] = await bot.wait_sent(1)
    assert reply.chat_id == "-1002"
    assert len(agent.calls) == 1


async def test_outage_is_retried_and_reported(
    fake_telegram: FakeTelegram, start_manager: Any
) -> None:
    bot = fake_telegram.bot(TOKEN)
    agent = EchoDispatcher()
    manager = await start_manager(tg_config(fake_telegram, allowFrom=["4242"]), dispatcher=agent)
    await bot.wait_polling()
    fake_telegram.fail("getUpdates", 502, times=2)
    fake_telegram.fail("getMe", 500, times=2)
    fake_telegram.fail("getUpdates", "drop", times=1)
    # wake the pending long poll so the next getUpdates hits the failures
    await bot.push_dm(4242, "first")
    await bot.wait_sent(1)

    def snapshot() -> dict[str, Any]:
        return manager.status()["channels"]["telegram"][0]

    await wait_for(lambda: snapshot()["reconnectAttempts"] >= 1)
    seen_error = snapshot()["lastError"]
    assert seen_error and (
        "Bad Gateway" in seen_error or "unreachable" in seen_error or "Internal" in seen_error
    )
    await wait_for(
        lambda: not fake_telegram.failures.get("getUpdates") and snapshot()["state"] == "running",
        timeout=15,
    )
    await bot.wait_polling()
    await bot.push_dm(4242, "after the outage")
    await bot.wait_sent(2)
    status = channels_status(manager)
    account = status["channelAccounts"]["telegram"][0]
    assert account["state"] == "running" and account["reconnectAttempts"] >= 2
    assert status["channels"]["telegram"]["running"] is True
    assert agent.calls[-1]["text"] == "after the outage"


async def test_refused_token_fails_without_retrying(
    fake_telegram: FakeTelegram, start_manager: Any
) -> None:
    manager = await start_manager(tg_config(fake_telegram))  # no bot registered: 401
    runner = manager.runner("telegram")
    assert runner.status.state is AccountState.FAILED
    assert "refused the bot token" in runner.status.last_error
    attempts = runner.status.reconnect_attempts
    await supervisor_ended("telegram")  # barrier: nothing is left that could retry
    assert runner.status.reconnect_attempts == attempts
    assert runner.status.state is AccountState.FAILED
    assert manager.state.value == "running"


async def test_two_profiles_same_channel_type_never_cross(
    fake_telegram: FakeTelegram, start_manager: Any
) -> None:
    main_bot = fake_telegram.bot("111:main-token", username="main_bot")
    rescue_bot = fake_telegram.bot("222:rescue-token", username="rescue_bot")
    main_agent = EchoDispatcher(reply=lambda t: f"main says {t}")
    rescue_agent = EchoDispatcher(reply=lambda t: f"rescue says {t}")
    base = {"apiRoot": fake_telegram.url, "pollTimeoutSeconds": 1, "allowFrom": ["4242"]}
    main = await start_manager(
        {"channels": {"telegram": {**base, "botToken": "111:main-token"}}},
        profile="main",
        dispatcher=main_agent,
    )
    rescue = await start_manager(
        {"channels": {"telegram": {**base, "botToken": "222:rescue-token"}}},
        profile="rescue",
        dispatcher=rescue_agent,
    )
    await main_bot.wait_polling()
    await rescue_bot.wait_polling()

    await main_bot.push_dm(4242, "to main")
    await rescue_bot.push_dm(4242, "to rescue")
    [main_reply] = await main_bot.wait_sent(1)
    [rescue_reply] = await rescue_bot.wait_sent(1)
    assert main_reply.text == "main says to main"
    assert rescue_reply.text == "rescue says to rescue"
    # barrier: a second message each, answered after anything the first could still cause
    await main_bot.push_dm(4242, "main again")
    await rescue_bot.push_dm(4242, "rescue again")
    main_sent = await main_bot.wait_sent(2)
    rescue_sent = await rescue_bot.wait_sent(2)
    assert [s.text for s in main_sent] == ["main says to main", "main says main again"]
    assert [s.text for s in rescue_sent] == ["rescue says to rescue", "rescue says rescue again"]
    assert [c["text"] for c in main_agent.calls] == ["to main", "main again"]
    assert [c["text"] for c in rescue_agent.calls] == ["to rescue", "rescue again"]
    # and their state (offsets, pairing) lives in their own state dirs
    assert main.instance.state_dir != rescue.instance.state_dir
    assert (main.instance.state_dir / "telegram" / "update-offset-default.json").exists()
    assert (rescue.instance.state_dir / "telegram" / "update-offset-default.json").exists()


async def test_offset_survives_restart(
    fake_telegram: FakeTelegram, start_manager: Any, home: Path
) -> None:
    bot = fake_telegram.bot(TOKEN)
    agent = EchoDispatcher()
    manager = await start_manager(tg_config(fake_telegram, allowFrom=["4242"]), dispatcher=agent)
    await bot.wait_polling()
    await bot.push_dm(4242, "once")
    await bot.wait_sent(1)
    await manager.stop()
    offset_file = home / ".clawdbot" / "telegram" / "update-offset-default.json"
    offset = json.loads(offset_file.read_text())
    assert offset["lastUpdateId"] == 1
    again = EchoDispatcher()
    await start_manager(tg_config(fake_telegram, allowFrom=["4242"]), dispatcher=again)
    await bot.wait_polling()
    await bot.push_dm(4242, "twice")
    await bot.wait_sent(2)
    assert [c["text"] for c in again.calls] == ["twice"]


async def test_media_in_and_out(
    fake_telegram: FakeTelegram, start_manager: Any, home: Path, tmp_path: Path
) -> None:
    bot = fake_telegram.bot(TOKEN)
    bot.add_file("photo-big", "photos/file_1.jpg", JPEG)
    agent = EchoDispatcher()
    manager = await start_manager(tg_config(fake_telegram, allowFrom=["4242"]), dispatcher=agent)
    await bot.wait_polling()
    photo = [
        {
            "file_id": "photo-small",
            "file_unique_id": "s",
            "width": 90,
            "height": 90,
            "file_size": 10,
        },
        {
            "file_id": "photo-big",
            "file_unique_id": "b",
            "width": 800,
            "height": 800,
            "file_size": len(JPEG),
        },
    ]
    await bot.push_dm(4242, None, photo=photo, caption="look at this")  # type: ignore[arg-type]
    await bot.wait_sent(1)
    assert agent.calls[0]["text"] == "look at this"
    [stored] = agent.calls[0]["media"]
    saved = Path(stored.path)
    assert saved.read_bytes() == JPEG and stored.mime_type == "image/jpeg"
    assert stored.kind == "image" and stored.is_model_image
    assert saved.is_relative_to(home / ".clawdbot" / "agents" / "main" / "sessions" / "media")
    assert saved.stat().st_mode & 0o777 == 0o600
    assert saved.parent.stat().st_mode & 0o777 == 0o700

    picture = tmp_path / "chart.png"
    picture.write_bytes(png())
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4 fake")
    result = await manager.send(
        "telegram", "4242", OutboundMessage(text="here you go", media=(str(picture), str(report)))
    )
    assert len(result.message_ids) == 3
    methods = [s.method for s in bot.sent[1:]]
    assert methods == ["sendMessage", "sendPhoto", "sendDocument"]
    assert bot.sent[-1].params["document"]["filename"] == "report.pdf"
    assert bot.sent[-2].params["photo"]["content"] == png()


async def test_typing_while_the_agent_thinks(
    fake_telegram: FakeTelegram, start_manager: Any
) -> None:
    bot = fake_telegram.bot(TOKEN)

    class Slow(EchoDispatcher):
        async def respond(self, *args: Any, **kwargs: Any) -> str:
            await wait_for(lambda: bot.actions)  # thinks until the user saw "typing"
            return await super().respond(*args, **kwargs)

    await start_manager(tg_config(fake_telegram, allowFrom=["4242"]), dispatcher=Slow())
    await bot.wait_polling()
    await bot.push_dm(4242, "think")
    await bot.wait_sent(1)
    assert bot.actions and bot.actions[0]["action"] == "typing"
    assert str(bot.actions[0]["chat_id"]) == "4242"


async def test_send_errors_are_typed(fake_telegram: FakeTelegram, start_manager: Any) -> None:
    from moltbot.channels.errors import TargetError, UnknownChannel

    fake_telegram.bot(TOKEN)
    manager = await start_manager(tg_config(fake_telegram))
    with pytest.raises(TargetError, match="(?i)chat not found"):
        await manager.send("telegram", "404", OutboundMessage(text="hi"))
    with pytest.raises(TargetError, match="invalid telegram target"):
        await manager.send("telegram", "not a chat", OutboundMessage(text="hi"))
    with pytest.raises(UnknownChannel, match="unsupported channel"):
        await manager.send("carrier-pigeon", "1", OutboundMessage(text="hi"))
    with pytest.raises(UnknownChannel, match="not configured"):
        await manager.send("slack", "C1", OutboundMessage(text="hi"))


async def test_flood_control_is_waited_out_and_exhausted_retries_are_typed(
    fake_telegram: FakeTelegram, start_manager: Any
) -> None:
    from moltbot.channels.errors import ChannelNotReady

    bot = fake_telegram.bot(TOKEN)
    manager = await start_manager(tg_config(fake_telegram, retry={"attempts": 2}))
    fake_telegram.fail("sendMessage", 429, times=1)
    result = await manager.send("telegram", "4242", OutboundMessage(text="after the flood"))
    assert result.message_id and [s.text for s in bot.sent] == ["after the flood"]
    fake_telegram.fail("sendMessage", 429, times=2)  # more than attempts: the caller is told
    with pytest.raises(ChannelNotReady, match="rate limit: retry after 1s") as refused:
        await manager.send("telegram", "4242", OutboundMessage(text="too much"))
    assert refused.value.retry_after == 1
    assert [s.text for s in bot.sent] == ["after the flood"]


async def test_webhook_mode(
    fake_telegram: FakeTelegram, start_manager: Any, free_port: Any
) -> None:

    bot = fake_telegram.bot(TOKEN)
    agent = EchoDispatcher()
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram-webhook"
    manager = await start_manager(
        tg_config(
            fake_telegram,
            mode="webhook",
            webhookUrl=url,
            webhookSecret="s3cret",
            allowFrom=["4242"],
        ),
        dispatcher=agent,
    )
    async with serving_webhooks(manager, port):
        await wait_for(lambda: bot.webhook is not None)
        assert bot.webhook == {"url": url, "secret_token": "s3cret"}
        update = {
            "update_id": 5,
            "message": bot.message(
                chat={"id": 4242, "type": "private"},
                sender={"id": 4242, "is_bot": False, "first_name": "Ann"},
                text="via webhook",
            ),
        }
        assert await bot.deliver_webhook(update) == 200
        [reply] = await bot.wait_sent(1)
        assert reply.text == "echo: via webhook"
        bot.webhook["secret_token"] = "wrong"
        assert await bot.deliver_webhook(update) == 401
        for wrong in near_misses("s3cret"):  # a prefix or length comparison would pass these
            bot.webhook["secret_token"] = wrong
            assert await bot.deliver_webhook(update) == 401, wrong


class Restarting(EchoDispatcher):
    """Agents that cannot take a message the first ``refuse`` times (a restart)."""

    def __init__(self, refuse: int) -> None:
        super().__init__()
        self.refuse = refuse
        self.refused: list[str] = []

    async def respond(self, agent_id: str, session_key: str, text: str, **kwargs: Any) -> str:
        from moltbot.errors import RetryLaterError

        if len(self.refused) < self.refuse:
            self.refused.append(text)
            raise RetryLaterError("the gateway is restarting")
        return await super().respond(agent_id, session_key, text, **kwargs)


async def test_an_update_not_taken_is_not_confirmed_and_comes_again(
    fake_telegram: FakeTelegram, start_manager: Any, home: Path
) -> None:
    bot = fake_telegram.bot(TOKEN)
    agent = Restarting(refuse=2)
    await start_manager(tg_config(fake_telegram, allowFrom=["4242"]), dispatcher=agent)
    await bot.wait_polling()
    update = await bot.push_dm(4242, "sent while restarting")
    [reply] = await bot.wait_sent(1, timeout=15)
    assert reply.text == "echo: sent while restarting"
    assert agent.refused == ["sent while restarting"] * 2
    assert [c["text"] for c in agent.calls] == ["sent while restarting"]
    offset_file = home / ".clawdbot" / "telegram" / "update-offset-default.json"
    assert json.loads(offset_file.read_text())["lastUpdateId"] == update["update_id"]
    # barrier: the next update is answered, and nothing else was sent meanwhile
    await bot.push_dm(4242, "and then")
    sent = await bot.wait_sent(2)
    assert [s.text for s in sent] == ["echo: sent while restarting", "echo: and then"]


async def test_token_revoked_while_running_fails_the_account_only(
    fake_telegram: FakeTelegram, start_manager: Any
) -> None:
    bot = fake_telegram.bot(TOKEN)
    manager = await start_manager(
        tg_config(fake_telegram, allowFrom=["4242"]), dispatcher=EchoDispatcher()
    )
    await bot.wait_polling()
    del fake_telegram.bots[TOKEN]  # @BotFather: /revoke
    runner = manager.runner("telegram")
    await wait_for(lambda: runner.status.state is AccountState.FAILED, timeout=15)
    await supervisor_ended("telegram")  # barrier: nothing is left that could retry
    status = channels_status(manager)["channelAccounts"]["telegram"][0]
    assert "refused the bot token" in status["lastError"] and status["connected"] is False
    assert manager.state.value == "running"
