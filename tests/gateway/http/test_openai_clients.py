"""The gateway's OpenAI-compatible API through a client that is not the ``openai`` SDK:
``huggingface_hub``'s ``InferenceClient`` / ``AsyncInferenceClient``, which build
the requests, parse the SSE stream and the errors with their own code (they
speak to any OpenAI-compatible server: TGI, vLLM, ...)."""

from __future__ import annotations

import asyncio
import json

import pytest
from huggingface_hub import AsyncInferenceClient, InferenceClient
from huggingface_hub.errors import HfHubHTTPError
from tests.fakes.llm_script import Fail, Reply

USER = [{"role": "user", "content": "hello from hf"}]


def session_keys(gw, agent: str) -> list[str]:
    return list(json.loads((gw.state_dir / f"agents/{agent}/sessions/sessions.json").read_text()))


async def test_chat_usage_agents_and_sessions(api_gateway, llm):
    gw = api_gateway
    client = InferenceClient(base_url=f"{gw.http}/v1", api_key=gw.token)

    def sync_calls() -> None:
        llm.push(Reply("plain answer", usage=(17, 4)))
        out = client.chat_completion(USER, model="moltbot:ops", extra_body={"user": "hf-user"})
        assert out.choices[0].message.content == "plain answer"
        assert out.choices[0].finish_reason == "stop"
        assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (17, 4)
        assert out.usage.total_tokens == 21
        assert out.model == "moltbot:ops"

        out = client.chat_completion(
            [{"role": "user", "content": "and again?"}],
            model="moltbot:ops",
            extra_body={"user": "hf-user"},
        )
        assert "hello from hf" in json.dumps(llm.requests[-1]["body"]["messages"])

        llm.push(Reply("streamed answer", usage=(23, 6), chunk_chars=3, finish="length"))
        chunks = list(
            client.chat_completion(
                USER, model="openclaw:main", stream=True, stream_options={"include_usage": True}
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "streamed answer"
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
        assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (23, 6)

    await asyncio.to_thread(sync_calls)
    assert "agent:ops:openai-user:hf-user" in session_keys(gw, "ops")
    assert any(k.startswith("agent:main:openai:") for k in session_keys(gw, "main"))

    # chunks apart in time: each its own piece (chunks read at once go out together)
    llm.push(Reply("async streamed", chunk_chars=2, chunk_delay=0.02))
    aclient = AsyncInferenceClient(base_url=f"{gw.http}/v1", api_key=gw.token)
    async with aclient:
        stream = await aclient.chat_completion(USER, model="moltbot", stream=True)
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        assert "".join(pieces) == "async streamed" and len(pieces) > 3
        out = await aclient.chat_completion(USER, model="moltbot")
        assert out.choices[0].message.content == "echo: hello from hf"


async def test_errors_reach_the_client_with_their_status(api_gateway, llm):
    gw = api_gateway
    good = InferenceClient(base_url=f"{gw.http}/v1", api_key=gw.token)
    bad = InferenceClient(base_url=f"{gw.http}/v1", api_key="not-the-token")

    def status_of(client: InferenceClient, messages=USER, **kwargs) -> HfHubHTTPError:
        with pytest.raises(HfHubHTTPError) as caught:
            client.chat_completion(messages, **kwargs)
        return caught.value

    def calls() -> None:
        error = status_of(bad, model="moltbot")
        assert error.response.status_code == 401
        assert "gateway token" in error.response.json()["error"]["message"]

        error = status_of(good, model="moltbot:nobody")
        assert error.response.status_code == 404
        assert error.response.json()["error"]["code"] == "model_not_found"

        error = status_of(good, [{"role": "user", "content": "z" * (1024 * 1024 + 1)}])
        assert error.response.status_code == 413

        llm.always_for("m1", Fail(429, "slow down", {"retry-after-ms": "1", "retry-after": "90"}))
        error = status_of(good, model="moltbot", stream=True)
        assert error.response.status_code == 429
        assert 80 <= int(error.response.headers["Retry-After"]) <= 90
        llm.always.clear()

    await asyncio.to_thread(calls)
