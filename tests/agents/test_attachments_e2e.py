"""``chat.send`` attachments end to end: a real gateway, the stand-in model servers.

An image attached in WebChat is stored in the session's media dir (sniffed, 0600),
reaches a vision model as an image part in the provider's own format, a text-only
model as a description, and comes back in ``chat.history`` as a signed URL the
Control UI can show.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid

import pytest
from tests.agents.gateway_agents import is_chat
from tests.fakes.llm_anthropic import FakeAnthropic
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.media import png

from gateway_harness import MethodFailed, ws_client

IMAGE = png(3, 2, (0, 128, 255))


def attachment(data: bytes = IMAGE, **extra):
    return {
        "type": "image",
        "mimeType": "image/png",
        "fileName": "chart.png",
        "content": base64.b64encode(data).decode(),
        **extra,
    }


async def send(client, text, attachments):
    return await client.call(
        "chat.send",
        {
            "sessionKey": "main",
            "message": text,
            "idempotencyKey": str(uuid.uuid4()),
            "attachments": attachments,
        },
    )


def vision(config, model="m1"):
    config["models"]["providers"]["fake"]["models"] = [{"id": model, "input": ["text", "image"]}]
    return config


async def test_vision_model_gets_an_openai_image_part(home, gateways):
    async with FakeOpenAI(api_key="sk-test") as llm:
        gw = gateways(home, vision(openai_config(llm.base_url)))
        async with ws_client(gw.url, gw.token, client_id="webchat-ui", mode="webchat") as client:
            ack = await send(client, "what is in this chart?", [attachment()])
            await client.wait_event(is_chat(ack["runId"], "final"), timeout=20)
            history = await client.call("chat.history", {"sessionKey": "main"})
    [user] = llm.requests[0]["body"]["messages"][1:]
    text, image = user["content"]
    assert text == {"type": "text", "text": "what is in this chart?"}
    assert image["type"] == "image_url"
    assert image["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(IMAGE).decode()
    media = list((gw.state_dir / "agents/main/sessions/media").glob("*/*.png"))
    assert [p.read_bytes() for p in media] == [IMAGE]
    assert media[0].stat().st_mode & 0o777 == 0o600
    block = history["messages"][0]["content"][1]
    assert block["type"] == "image" and block["mimeType"] == "image/png"
    assert "path" not in block  # clients never learn the state dir
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.port}{block['url']}") as response:
        assert response.read() == IMAGE
        assert response.headers["Content-Type"] == "image/png"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    forged = block["url"].rsplit("/", 2)
    forged[1] = "0" * 32
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{gw.port}{'/'.join(forged)}")
    assert refused.value.code == 404


async def test_text_only_model_gets_a_description(home, gateways):
    async with FakeOpenAI(api_key="sk-test") as llm:
        gw = gateways(home, openai_config(llm.base_url))  # m1 declares no image input
        async with ws_client(gw.url, gw.token, client_id="webchat-ui", mode="webchat") as client:
            ack = await send(client, "look", [attachment()])
            await client.wait_event(is_chat(ack["runId"], "final"), timeout=20)
    content = llm.requests[0]["body"]["messages"][-1]["content"]
    assert [part["type"] for part in content] == ["text"]
    assert "[image attachment: chart.png, image/png" in content[0]["text"]


async def test_anthropic_vision_model_gets_a_base64_image_block(home, gateways):
    async with FakeAnthropic(api_key="ak") as claude:
        config = {
            "models": {"providers": {"anthropic": {"baseUrl": claude.base_url, "apiKey": "ak"}}},
            "agents": {"defaults": {"model": "anthropic/claude-sonnet-4-5"}},
        }
        gw = gateways(home, config)
        async with ws_client(gw.url, gw.token, client_id="webchat-ui", mode="webchat") as client:
            ack = await send(client, "", [attachment()])
            await client.wait_event(is_chat(ack["runId"], "final"), timeout=20)
    content = claude.requests[0]["body"]["messages"][-1]["content"]
    image = next(block for block in content if block["type"] == "image")
    assert image["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": base64.b64encode(IMAGE).decode(),
    }


async def test_bad_attachments_are_refused_and_nothing_is_recorded(home, gateways):
    async with FakeOpenAI(api_key="sk-test") as llm:
        gw = gateways(home, vision(openai_config(llm.base_url)))
        async with ws_client(gw.url, gw.token, client_id="webchat-ui", mode="webchat") as client:
            with pytest.raises(MethodFailed) as bad:
                await send(client, "x", [{"type": "image", "content": "not base64!"}])
            assert "invalid base64" in str(bad.value)
            # a "PNG" that is really HTML is kept as a file, never shown to a model as an image
            ack = await send(client, "x", [attachment(b"<html><script>alert(1)</script>")])
            await client.wait_event(is_chat(ack["runId"], "final"), timeout=20)
    assert len(llm.requests) == 1
    content = llm.requests[0]["body"]["messages"][-1]["content"]
    assert [part["type"] for part in content] == ["text"]
    assert "[image attachment" not in json.dumps(content)
