"""``POST /v1/responses`` of a real gateway subprocess, driven by the official ``openai``
SDK's ``responses`` client (streamed and not); the agent's model is the stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import openai
import pytest
from tests.agents.gateway_agents import start
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Fail, Reply

from gateway_harness import GatewayProcess


def responses_config(llm: FakeOpenAI, enabled: bool = True) -> dict[str, object]:
    config = openai_config(llm.base_url)
    config["gateway"] = {
        "http": {"endpoints": {"responses": {"enabled": enabled}}},
        "auth": {"rateLimit": {"attempts": 1000}},
    }
    config["agents"]["list"] = [{"id": "main"}, {"id": "ops"}]  # type: ignore[index]
    return config


@pytest.fixture
def gateway(home: Path, llm: FakeOpenAI) -> Iterator[GatewayProcess]:
    gw = start(home, responses_config(llm))
    yield gw
    gw.stop()


def client(gw: GatewayProcess, token: str | None = None) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=token or gw.token, base_url=f"{gw.http}/v1", max_retries=0)


def sessions(gw: GatewayProcess, agent: str = "main") -> list[str]:
    path = gw.state_dir / f"agents/{agent}/sessions/sessions.json"
    return list(json.loads(path.read_text())) if path.exists() else []


async def test_plain_response(gateway: GatewayProcess, llm: FakeOpenAI) -> None:
    llm.push(Reply("Paris.", usage=(20, 3)))
    async with client(gateway) as api:
        response = await api.responses.create(
            model="moltbot",
            input="What is the capital of France?",
            instructions="Answer in one word.",
            user="ann",
        )
    assert response.output_text == "Paris."
    assert response.status == "completed" and response.id.startswith("resp_")
    assert response.model == "moltbot:main"
    [item] = response.output
    assert item.type == "message" and item.role == "assistant"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (20, 3)
    body = llm.requests[0]["body"]
    assert body["messages"][-1] == {"role": "user", "content": "What is the capital of France?"}
    assert "Answer in one word." in body["messages"][0]["content"]
    assert "agent:main:openresponses-user:ann" in sessions(gateway)


async def test_streamed_response_with_the_sdk_stream_helper(
    gateway: GatewayProcess, llm: FakeOpenAI
) -> None:
    # chunks apart in time: each its own delta (chunks read at once go out together)
    llm.push(Reply("One, two, three, four.", chunk_chars=4, chunk_delay=0.02))
    async with client(gateway) as api:
        async with api.responses.stream(
            model="moltbot:ops",
            input=[
                {"role": "user", "content": "count"},
                {"role": "assistant", "content": "To what?"},
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "four"}],
                },
            ],
        ) as stream:
            kinds, deltas = [], []
            async for event in stream:
                kinds.append(event.type)
                if event.type == "response.output_text.delta":
                    deltas.append(event.delta)
            final = await stream.get_final_response()
    assert final.output_text == "One, two, three, four."
    assert "".join(deltas) == "One, two, three, four." and len(deltas) > 1
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    sent = json.dumps(llm.requests[0]["body"]["messages"])
    assert "To what?" in sent and sent.count("four") == 1  # history folded, current last


async def test_raw_stream_events_are_ordered(gateway: GatewayProcess) -> None:
    async with client(gateway) as api:
        stream = await api.responses.create(model="moltbot", input="hello", stream=True)
        numbers = [event.sequence_number async for event in stream]
    assert numbers == list(range(len(numbers)))


async def test_errors(gateway: GatewayProcess, llm: FakeOpenAI, home: Path) -> None:
    async with client(gateway, token="wrong") as api:
        with pytest.raises(openai.AuthenticationError):
            await api.responses.create(model="moltbot", input="x")
    async with client(gateway) as api:
        with pytest.raises(openai.BadRequestError) as caught:
            await api.responses.create(
                model="moltbot",
                input=[{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}],
            )
        assert caught.value.code == "unsupported_content"
        with pytest.raises(openai.BadRequestError) as caught:
            await api.responses.create(model="moltbot", input="x", previous_response_id="resp_1")
        assert caught.value.param == "previous_response_id"
        with pytest.raises(openai.NotFoundError):
            await api.responses.create(model="gpt-4o", input="x")
        llm.push(Fail(429, headers={"retry-after": "7"}), Fail(429), Fail(429), Fail(429))
        with pytest.raises(openai.RateLimitError):
            await api.responses.create(model="moltbot", input="x", stream=True)
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{gateway.http}/v1/responses", headers={"Authorization": f"Bearer {gateway.token}"}
        ) as response:
            assert response.status == 405 and response.headers["Allow"] == "POST"


def test_disabled_by_default(home: Path, llm: FakeOpenAI) -> None:
    gw = start(home, responses_config(llm, enabled=False))
    try:
        api = openai.OpenAI(api_key=gw.token, base_url=f"{gw.http}/v1", max_retries=0)
        with pytest.raises(openai.NotFoundError) as caught:
            api.responses.create(model="moltbot", input="x")
        assert caught.value.code == "endpoint_disabled"
        with pytest.raises(openai.AuthenticationError):  # auth first: nothing learned
            openai.OpenAI(api_key="x", base_url=f"{gw.http}/v1", max_retries=0).responses.create(
                model="moltbot", input="x"
            )
    finally:
        gw.stop()
