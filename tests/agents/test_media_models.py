"""Attachments in agent turns: image parts for vision models, descriptions for the
others, audio transcribed through an OpenAI-compatible ``audio/transcriptions``."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.media import OGG, png

from moltbot.sessions.media import MediaStore


async def test_voice_note_is_transcribed_for_the_model(make_runtime, tmp_path: Path) -> None:
    async with FakeOpenAI(api_key="sk-test") as llm:
        config = openai_config(llm.base_url)
        config["tools"] = {"media": {"audio": {"models": [{"provider": "fake", "model": "w1"}]}}}
        runtime, _ = await make_runtime(config)
        llm.transcript = "buy oat milk on the way home"
        voice = MediaStore(tmp_path / "s").save("main", OGG, kind="voice", file_name="note.ogg")
        reply = await runtime.respond("main", "agent:main:main", "", media=[voice])
        assert reply.startswith("echo:")
        [form] = llm.transcriptions
        assert form["model"] == "w1" and form["file"]["data"] == OGG
        text = llm.requests[0]["body"]["messages"][-1]["content"][0]["text"]
        assert "[voice attachment: note.ogg, audio/ogg" in text
        assert "[transcript] buy oat milk on the way home" in text
        history = await runtime.history("main")
        [block] = [b for b in history["messages"][0]["content"] if b["type"] == "file"]
        assert block["transcript"] == "buy oat milk on the way home"


async def test_without_a_transcription_model_audio_is_only_described(
    make_runtime, tmp_path: Path
) -> None:
    async with FakeOpenAI(api_key="sk-test") as llm:
        runtime, _ = await make_runtime(openai_config(llm.base_url))
        voice = MediaStore(tmp_path / "s").save("main", OGG, kind="voice")
        await runtime.respond("main", "agent:main:main", "listen", media=[voice])
        assert llm.transcriptions == []
        text = llm.requests[0]["body"]["messages"][-1]["content"][0]["text"]
        assert "[voice attachment" in text and "[transcript]" not in text


async def test_only_the_latest_images_are_resent(make_runtime, tmp_path: Path) -> None:
    async with FakeOpenAI(api_key="sk-test") as llm:
        config = openai_config(llm.base_url)
        config["models"]["providers"]["fake"]["models"] = [{"id": "m1", "input": ["text", "image"]}]
        runtime, _ = await make_runtime(config)
        store = MediaStore(tmp_path / "s")
        for turn in range(5):
            image = store.save("main", png(turn + 1, 1))
            await runtime.respond("main", "agent:main:main", f"turn {turn}", media=[image])
        last = llm.requests[-1]["body"]["messages"]
        users = [m for m in last if m["role"] == "user"]
        kinds = [[p["type"] for p in m["content"]] for m in users]
        assert kinds[:2] == [["text"], ["text"]]  # older images are described
        assert all(k == ["text", "image_url"] for k in kinds[2:])
        assert "[image attachment" in users[0]["content"][0]["text"]
