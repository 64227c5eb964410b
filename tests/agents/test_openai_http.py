"""POST /v1/chat/completions on the gateway port, driven by the real openai SDK."""

from __future__ import annotations

import openai
import pytest
from tests.agents.gateway_agents import start
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Reply


@pytest.fixture
async def llm():
    async with FakeOpenAI(api_key="sk-test") as server:
        yield server


@pytest.fixture
def gateway_with_api(home, llm):
    config = openai_config(llm.base_url)
    config["gateway"] = {"http": {"endpoints": {"chatCompletions": {"enabled": True}}}}
    config["agents"]["list"] = [{"id": "main"}, {"id": "ops"}]
    gw = start(home, config)
    yield gw
    gw.stop()


async def test_non_streaming_and_streaming(gateway_with_api, llm):
    gw = gateway_with_api
    client = openai.AsyncOpenAI(api_key=gw.token, base_url=f"{gw.http}/v1", max_retries=0)
    async with client:
        reply = await client.chat.completions.create(
            model="moltbot:main", messages=[{"role": "user", "content": "hello api"}]
        )
        assert reply.choices[0].message.content == "echo: hello api"
        assert reply.choices[0].finish_reason == "stop"
        assert reply.usage.total_tokens == 19

        llm.push(Reply("streamed through the gateway", chunk_chars=4, chunk_delay=0.01))
        stream = await client.chat.completions.create(
            model="moltbot:ops",
            stream=True,
            user="alice",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "earlier"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "now"},
            ],
        )
        pieces = []
        finish = None
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    pieces.append(choice.delta.content)
                finish = choice.finish_reason or finish
        assert "".join(pieces) == "streamed through the gateway" and len(pieces) > 2
        assert finish == "stop"
        sent = llm.requests[-1]["body"]["messages"]
        assert "Be brief." in sent[0]["content"]
        assert "[Chat history for context]" in sent[-1]["content"]
        assert sent[-1]["content"].endswith("now")
    index = (gw.state_dir / "agents/ops/sessions/sessions.json").read_text()
    assert "agent:ops:openai-user:alice" in index


async def test_auth_and_errors(gateway_with_api):
    gw = gateway_with_api
    bad = openai.AsyncOpenAI(api_key="wrong", base_url=f"{gw.http}/v1", max_retries=0)
    async with bad:
        with pytest.raises(openai.AuthenticationError):
            await bad.chat.completions.create(
                model="moltbot", messages=[{"role": "user", "content": "x"}]
            )
    good = openai.AsyncOpenAI(api_key=gw.token, base_url=f"{gw.http}/v1", max_retries=0)
    async with good:
        with pytest.raises(openai.BadRequestError, match="Missing user message"):
            await good.chat.completions.create(
                model="moltbot", messages=[{"role": "system", "content": "x"}]
            )
        with pytest.raises(openai.BadRequestError, match="unknown agent"):
            await good.chat.completions.create(
                model="moltbot:ghost", messages=[{"role": "user", "content": "x"}]
            )


async def test_disabled_by_default(home, llm):
    gw = start(home, openai_config(llm.base_url))
    try:
        client = openai.AsyncOpenAI(api_key=gw.token, base_url=f"{gw.http}/v1", max_retries=0)
        async with client:
            with pytest.raises(openai.NotFoundError):
                await client.chat.completions.create(
                    model="moltbot", messages=[{"role": "user", "content": "x"}]
                )
    finally:
        gw.stop()
