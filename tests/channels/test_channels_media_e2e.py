"""Media through every channel with the real agent runtime and a stand-in model:
an image a user sends reaches a vision model as an image part, and a file the agent
names on a ``MEDIA:`` line (inside its workspace) reaches the platform as a file,
while one outside the workspace is never sent."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import nio
from tests.channels.channel_helpers import wait_for
from tests.channels.test_channels_discord import TOKEN as DISCORD_TOKEN
from tests.channels.test_channels_discord import dc_config
from tests.channels.test_channels_matrix import Human, bot_account, joined, mx_config
from tests.fakes.discord import FakeDiscord
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Reply
from tests.fakes.media import JPEG, png
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram

IMAGE = png(6, 4, (200, 100, 0))
TG_TOKEN = "556:media-e2e"


def vision(llm: FakeOpenAI, channels: dict[str, Any], home: Path) -> dict[str, Any]:
    config = openai_config(llm.base_url)
    config["models"]["providers"]["fake"]["models"] = [{"id": "m1", "input": ["text", "image"]}]
    config["channels"] = channels
    config.setdefault("agents", {}).setdefault("defaults", {})["workspace"] = str(home / "ws")
    return config


def image_part(llm: FakeOpenAI, index: int = 0) -> tuple[str, str]:
    """(text, data URL) of the last user message of model request ``index``."""
    content = llm.requests[index]["body"]["messages"][-1]["content"]
    text = " ".join(p["text"] for p in content if p["type"] == "text")
    [url] = [p["image_url"]["url"] for p in content if p["type"] == "image_url"]
    return text, url


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def chart(home: Path) -> bytes:
    picture = png(10, 10, (0, 0, 255))
    (home / "ws").mkdir(parents=True, exist_ok=True)
    (home / "ws" / "chart.png").write_bytes(picture)
    return picture


REPLY = "Here is the chart.\nMEDIA: chart.png\nMEDIA: ../.clawdbot/moltbot.json"


async def test_telegram(
    fake_telegram: FakeTelegram, llm: FakeOpenAI, stack: Any, home: Path
) -> None:
    bot = fake_telegram.bot(TG_TOKEN)
    bot.add_file("p1", "photos/p1.jpg", JPEG)
    channel = {"botToken": TG_TOKEN, "apiRoot": fake_telegram.url, "pollTimeoutSeconds": 1}
    await stack(vision(llm, {"telegram": {**channel, "allowFrom": ["4242"]}}, home))
    picture = chart(home)
    await bot.wait_polling()
    llm.push(Reply(REPLY))
    photo = [{"file_id": "p1", "file_unique_id": "u", "width": 1, "height": 1}]
    await bot.push_dm(4242, None, photo=photo, caption="what is it?")  # type: ignore[arg-type]
    sent = await bot.wait_sent(2)
    assert image_part(llm) == ("what is it?", data_url(JPEG, "image/jpeg"))
    assert [s.method for s in sent] == ["sendMessage", "sendPhoto"]
    assert sent[0].text == "Here is the chart." and sent[1].params["photo"]["content"] == picture


async def test_slack(fake_slack: FakeSlack, llm: FakeOpenAI, stack: Any, home: Path) -> None:
    ws = fake_slack.workspace()
    slack = {
        "botToken": ws.bot_token,
        "appToken": ws.app_token,
        "apiUrl": fake_slack.api_url,
        "allowFrom": ["U0ANN"],
    }
    await stack(vision(llm, {"slack": slack}, home))
    picture = chart(home)
    await ws.wait_connected()
    llm.push(Reply(REPLY))
    shared = ws.file("screen.png", IMAGE, "image/png")
    await ws.push_event(
        ws.event(
            channel="D0ANN", user="U0ANN", text="see this", subtype="file_share", files=[shared]
        )
    )
    await ws.wait_posted(1)
    await wait_for(lambda: ws.uploads)
    assert image_part(llm) == ("see this", data_url(IMAGE, "image/png"))
    [upload] = ws.uploads
    assert upload["content"] == picture and upload["filename"] == "chart.png"


async def test_discord(fake_discord: FakeDiscord, llm: FakeOpenAI, stack: Any, home: Path) -> None:
    bot = fake_discord.bot(DISCORD_TOKEN)
    config = dc_config(fake_discord, allowFrom=["4242"])
    await stack(vision(llm, config["channels"], home))
    picture = chart(home)
    await bot.wait_ready()
    llm.push(Reply(REPLY))
    await bot.push_message(
        "and this?", attachments=[bot.attachment("photo.png", IMAGE, "image/png")]
    )
    [sent] = await bot.wait_sent(1)
    assert image_part(llm) == ("and this?", data_url(IMAGE, "image/png"))
    assert sent.content == "Here is the chart."
    assert [(f["filename"], f["data"]) for f in sent.files] == [("chart.png", picture)]


async def test_matrix(synapse: Any, llm: FakeOpenAI, stack: Any, home: Path) -> None:
    ann = Human(synapse, f"ann{base64.b16encode(IMAGE[-3:]).decode().lower()}x")
    try:
        await ann.sync()
        bot_id, password = bot_account(synapse)
        config = mx_config(synapse, bot_id, password, allowFrom=[ann.user_id])
        _, channels = await stack(vision(llm, config["channels"], home))
        picture = chart(home)
        room = await ann.dm(bot_id)
        await joined(channels, room)
        llm.push(Reply(REPLY))
        await ann.send_image(room, IMAGE)
        [(_, text), (_, image)] = await ann.wait_messages(2)
        _, url = image_part(llm)
        assert url == data_url(IMAGE, "image/png")
        assert text.body == "Here is the chart."
        downloaded = await ann.client.download(mxc=image.source["content"]["url"])
        assert isinstance(downloaded, nio.DownloadResponse) and downloaded.body == picture
    finally:
        await ann.client.close()
