"""Telegram replies shown while the model writes them (``streamMode``): one message,
edited through python-telegram-bot's ``editMessageText`` against the stand-in Bot API."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tests.channels.channel_helpers import wait_for
from tests.channels.test_channels_telegram import TOKEN, tg_config
from tests.fakes.llm_openai import openai_config
from tests.fakes.llm_script import Reply
from tests.fakes.media import png
from tests.fakes.telegram import FakeBot, FakeTelegram, Sent, parse_html, utf16_len

from moltbot.channels.types import OutboundMessage


async def streaming(
    fake: FakeTelegram, llm: Any, stack: Any, mode: str = "partial", **extra: Any
) -> FakeBot:
    """A running agent and Telegram account (``streamMode: mode``) that answers 4242."""
    bot = fake.bot(TOKEN)
    config = tg_config(fake, allowFrom=["4242"], streamMode=mode, **extra)
    await stack({**openai_config(llm.base_url), **config})
    await bot.wait_polling()
    return bot


async def gated_reply(
    bot: FakeBot, llm: Any, text: str, chunk_chars: int, gate_after: int = 1
) -> tuple[Sent, asyncio.Event]:
    """Ask 4242's question whose answer is ``text``, the model stopping after
    ``gate_after`` pieces: the message shown then, and the gate that lets it go on."""
    gate = asyncio.Event()
    llm.push(Reply(text=text, chunk_chars=chunk_chars, gate=gate, gate_after=gate_after))
    before = len(bot.sent)
    await bot.push_dm(4242, "a question")
    sent = await bot.wait_sent(before + 1)
    assert len(sent) == before + 1
    return sent[-1], gate


def edits(bot: FakeBot) -> list[dict[str, Any]]:
    """Every editMessageText the bot made (answered or refused), in order."""
    return [params for method, params in bot.calls if method == "editMessageText"]


def shown(bot: FakeBot) -> list[str]:
    """Every text the user saw in the chat: each message as sent and after each edit."""
    seen = []
    for sent in bot.sent:
        seen.append(sent.params.get("text") or "")
        seen += [str(edit["text"]) for edit in sent.edits]
    return seen


async def test_partial_reply_is_one_message_edited_into_the_final_reply(
    fake_telegram: FakeTelegram, llm: Any, stack: Any
) -> None:
    bot = await streaming(fake_telegram, llm, stack)
    text = "Hello there, **friend**. The whole answer is here now."
    preview, gate = await gated_reply(bot, llm, text, 12)
    assert preview.method == "sendMessage" and preview.params["parse_mode"] == "HTML"
    assert preview.text == "Hello there,"
    assert preview.edits == []
    gate.set()
    await wait_for(lambda: preview.text == "Hello there, friend. The whole answer is here now.")
    # barrier: the next turn of the session starts only once this one is delivered
    await bot.push_dm(4242, "thanks")
    await bot.wait_sent(2)
    await wait_for(lambda: bot.sent[1].text == "echo: thanks")
    [reply, _] = bot.sent
    assert reply is preview and reply.edits
    message_id = reply.message["message_id"]
    assert all(
        int(edit["message_id"]) == message_id and str(edit["chat_id"]) == "4242"
        for edit in reply.edits
    )
    final = reply.edits[-1]
    assert final["parse_mode"] == "HTML"
    assert final["text"] == "Hello there, <b>friend</b>. The whole answer is here now."
    assert reply.message["edit_date"]


async def test_no_reply_tags_and_media_lines_never_show(
    fake_telegram: FakeTelegram, llm: Any, stack: Any, home: Path
) -> None:
    bot = await streaming(fake_telegram, llm, stack)
    workspace = home / "clawd-default"
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "chart.png").write_bytes(png(4, 4))

    # a silent reply, streamed three characters at a time, never shows
    llm.push(Reply(text="NO_REPLY", chunk_chars=3))
    await bot.push_dm(4242, "just so you know")
    # a reply tag: the model stops in the middle of writing it
    gate = asyncio.Event()
    tagged = "Here it is [[reply_to_current]] as asked."
    llm.push(Reply(text=tagged, chunk_chars=16, gate=gate, gate_after=1))  # "Here it is [[rep"
    await bot.push_dm(4242, "the answer?")
    [first] = await bot.wait_sent(1)  # the silent turn came first and sent nothing
    assert first.text == "Here it is"
    gate.set()
    await wait_for(lambda: first.text.split() == ["Here", "it", "is", "as", "asked."])

    # a MEDIA line: the model stops after its first letters
    gate = asyncio.Event()
    chart = "Here is the chart.\nMEDIA: chart.png"
    llm.push(Reply(text=chart, chunk_chars=11, gate=gate, gate_after=2))  # "…chart.\nMED"
    await bot.push_dm(4242, "a chart please")
    await bot.wait_sent(2)
    second = bot.sent[1]
    assert second.text == "Here is the chart."
    gate.set()
    await wait_for(lambda: len(bot.sent) == 3)
    photo = bot.sent[2]
    assert photo.method == "sendPhoto" and photo.params["photo"]["content"] == png(4, 4)
    for text in shown(bot):
        assert "NO_REPLY" not in text and "[[" not in text and "MED" not in text
    assert bot.sent[1].text == "Here is the chart." and bot.sent[1].edits == []


async def test_a_reply_over_the_chunk_limit_stops_growing_and_the_rest_follows(
    fake_telegram: FakeTelegram, llm: Any, stack: Any
) -> None:
    bot = await streaming(fake_telegram, llm, stack, textChunkLimit=100)
    long = " ".join(f"wörd{i} 🙂" for i in range(30))  # ~300 UTF-16 units
    preview, gate = await gated_reply(bot, llm, long, 30)
    assert preview.text == long[:30].strip()
    gate.set()
    await wait_for(lambda: "wörd29" in bot.sent[-1].text)
    first, *rest = bot.sent
    assert first is preview and first.edits and rest
    assert all(s.method == "sendMessage" and s.edits == [] for s in rest)
    # every text shown fitted in one message: the preview stopped at the limit
    assert all(utf16_len(parse_html(text)) <= 100 for text in shown(bot))
    assert " ".join(s.text for s in bot.sent).split() == long.split()


async def test_block_mode_edits_only_complete_paragraphs(
    fake_telegram: FakeTelegram, llm: Any, stack: Any
) -> None:
    bot = await streaming(fake_telegram, llm, stack, mode="block")
    text = "First paragraph.\n\nSecond paragraph is here.\n\nThird."
    preview, gate = await gated_reply(bot, llm, text, 14, 2)  # "…\n\nSecond par"
    assert preview.text == "First paragraph."
    gate.set()
    await wait_for(lambda: preview.text == text)
    assert len(bot.sent) == 1
    paragraphs = text.split("\n\n")
    complete = {"\n\n".join(paragraphs[:n]) for n in range(1, len(paragraphs) + 1)}
    assert all(parse_html(text) in complete for text in shown(bot))
    # a paragraph shows as soon as the blank line that ends it arrives
    text = "Just ended.\n\nAnd more."
    second, gate = await gated_reply(bot, llm, text, 13)  # "Just ended.\n\n"
    assert second.text == "Just ended."
    gate.set()
    await wait_for(lambda: second.text == text)


async def test_a_preview_deleted_by_the_user_gets_the_reply_as_a_new_message(
    fake_telegram: FakeTelegram, llm: Any, stack: Any
) -> None:
    bot = await streaming(fake_telegram, llm, stack)
    text = "Hello there, the rest of the answer."
    preview, gate = await gated_reply(bot, llm, text, 12)
    bot.delete(preview.message["message_id"])
    gate.set()
    await wait_for(lambda: len(bot.sent) == 2)
    assert bot.sent[1].text == text and bot.sent[1].method == "sendMessage"
    assert edits(bot)  # tried, refused ("message to edit not found")
    assert preview.edits == []


async def test_stream_mode_is_per_account_and_off_sends_once(
    fake_telegram: FakeTelegram, llm: Any, stack: Any
) -> None:
    """``streamMode`` set on the channel streams the default account; an account that
    turns it off sends each reply once, never edited."""
    bot = fake_telegram.bot(TOKEN)
    quiet = fake_telegram.bot("999:quiet-token", username="quiet_bot")
    config = tg_config(
        fake_telegram,
        allowFrom=["4242"],
        streamMode="partial",
        accounts={"quiet": {"botToken": "999:quiet-token", "streamMode": "off"}},
    )
    await stack({**openai_config(llm.base_url), **config})
    await bot.wait_polling()
    await quiet.wait_polling()

    text = "A reply written in many small pieces, one after the other, slowly."
    preview, gate = await gated_reply(bot, llm, text, 8)
    assert preview.text == "A reply"
    gate.set()
    await wait_for(lambda: preview.text == text)

    llm.push(Reply(text=text, chunk_chars=8, chunk_delay=0.05))
    await quiet.push_dm(4242, "do not stream it")
    [reply] = await quiet.wait_sent(1)
    assert reply.text == text
    await quiet.push_dm(4242, "again")  # barrier: the first turn is over once this is answered
    await wait_for(lambda: len(quiet.sent) == 2 and quiet.sent[1].text == "echo: again")
    assert edits(quiet) == []
    assert [s.method for s in quiet.sent] == ["sendMessage", "sendMessage"]


async def test_edit_formats_like_send_and_handles_refusals(
    fake_telegram: FakeTelegram, start_manager: Any
) -> None:
    from moltbot.channels.errors import TargetError

    bot = fake_telegram.bot(TOKEN)
    manager = await start_manager(tg_config(fake_telegram))
    channel = manager.running_channel("telegram")
    result = await channel.send("4242", OutboundMessage(text="a **b**"))
    [message_id] = result.message_ids
    [sent] = bot.sent

    # the same content again is "message is not modified": done, not an error
    await channel.edit("4242", message_id, OutboundMessage(text="a **b**"))
    assert len(edits(bot)) == 1 and sent.edits == []
    await channel.edit("4242", message_id, OutboundMessage(text="a **c**"))
    assert sent.edits[-1]["text"] == "a <b>c</b>" and sent.text == "a c"
    # formatting Telegram refuses: the edit is made with the plain text
    bot.reject_html = 1
    await channel.edit("4242", message_id, OutboundMessage(text="x **y**"))
    assert "parse_mode" not in sent.edits[-1] and sent.text == "x **y**"
    # a plain edit to a message with that text already: not modified either
    await channel.edit("4242", message_id, OutboundMessage(text="x **y**", plain=True))
    assert len(sent.edits) == 2
    # a topic target edits the message in its chat
    await channel.edit("4242:topic:7", message_id, OutboundMessage(text="z"))
    assert sent.text == "z"
    # a message that is gone, or not a message id
    bot.delete(int(message_id))
    with pytest.raises(TargetError, match="(?i)message to edit not found"):
        await channel.edit("4242", message_id, OutboundMessage(text="again"))
    with pytest.raises(TargetError, match="invalid telegram message id"):
        await channel.edit("4242", "abc", OutboundMessage(text="again"))
    assert isinstance(sent, Sent) and sent.text == "z"
