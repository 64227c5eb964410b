"""The OpenAI-compatible API of a real gateway subprocess, driven by the official
``openai`` SDK (sync and async, streamed and not); the agent's model is the
stand-in OpenAI server."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import openai
import pytest
from tests.agents.gateway_agents import start
from tests.channels.channel_helpers import wait_for
from tests.fakes.llm_openai import openai_config
from tests.fakes.llm_script import Fail, Reply

from moltbot.agents.turn import MAX_STEPS

USER = [{"role": "user", "content": "hello api"}]


def clients(gw):
    base = f"{gw.http}/v1"
    return (
        openai.OpenAI(api_key=gw.token, base_url=base, max_retries=0),
        openai.AsyncOpenAI(api_key=gw.token, base_url=base, max_retries=0),
    )


def session_keys(gw, agent: str) -> list[str]:
    path = gw.state_dir / f"agents/{agent}/sessions/sessions.json"
    return list(json.loads(path.read_text())) if path.exists() else []


def sent_texts(llm) -> str:
    """Everything the model was sent in its last request, as one string."""
    return json.dumps(llm.requests[-1]["body"]["messages"])


# ---- models and agent selection ---------------------------------------------------------


def test_models_list_and_retrieve(api_gateway):
    sync, _ = clients(api_gateway)
    with sync:
        models = sync.models.list()
        assert [m.id for m in models.data] == ["moltbot", "moltbot:main", "moltbot:ops"]
        assert {m.owned_by for m in models.data} == {"moltbot"}
        assert all(m.object == "model" and m.created > 0 for m in models.data)
        assert sync.models.retrieve("moltbot:ops").id == "moltbot:ops"
        assert sync.models.retrieve("openclaw:ops").id == "openclaw:ops"  # upstream's alias
        assert sync.models.retrieve("moltbot/ops").id == "moltbot/ops"
        with pytest.raises(openai.NotFoundError) as caught:
            sync.models.retrieve("moltbot:ghost")
        assert caught.value.code == "model_not_found"
        assert "moltbot:main" in caught.value.message


async def test_model_selects_the_agent(api_gateway, llm):
    gw = api_gateway
    _, client = clients(gw)
    async with client:
        for model, agent in [("moltbot:ops", "ops"), ("openclaw:ops", "ops"), ("moltbot", "main")]:
            reply = await client.chat.completions.create(
                model=model, messages=USER, user=f"via-{model.replace(':', '-')}"
            )
            assert reply.model == f"moltbot:{agent}"
            assert f"agent:{agent}:openai-user:via-{model.replace(':', '-')}" in session_keys(
                gw, agent
            )
        with pytest.raises(openai.NotFoundError) as caught:
            await client.chat.completions.create(model="gpt-4o", messages=USER)
        assert caught.value.code == "model_not_found" and caught.value.param == "model"
        # the header beats the model
        reply = await client.chat.completions.create(
            model="moltbot", messages=USER, user="hdr", extra_headers={"x-moltbot-agent-id": "ops"}
        )
        assert "agent:ops:openai-user:hdr" in session_keys(gw, "ops")
    assert len(llm.requests) == 4


async def test_system_messages_and_earlier_turns_reach_the_model(api_gateway, llm):
    _, client = clients(api_gateway)
    async with client:
        # chunks apart in time: each its own piece (chunks read at once go out together)
        llm.push(Reply("streamed through the gateway", chunk_chars=4, chunk_delay=0.02))
        stream = await client.chat.completions.create(
            model="moltbot:ops",
            stream=True,
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "earlier"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": "now"}]},
            ],
        )
        pieces = [c.choices[0].delta.content async for c in stream if c.choices]
        assert "".join(p or "" for p in pieces) == "streamed through the gateway"
        assert len(pieces) > 3
    sent = llm.requests[-1]["body"]["messages"]
    assert "Be brief." in sent[0]["content"]
    assert "[Chat history for context]\nUser: earlier\nAssistant: ok" in sent[-1]["content"]
    assert sent[-1]["content"].endswith("now")


# ---- usage and finish_reason --------------------------------------------------------------


async def test_usage_is_the_providers_non_streamed_and_streamed(api_gateway, llm):
    _, client = clients(api_gateway)
    async with client:
        # a turn with a tool step: two model calls, their usage added up
        llm.push(Reply("", tool_calls=[("no_such_tool", {})], usage=(100, 20)))
        llm.push(Reply("done", usage=(130, 5)))
        reply = await client.chat.completions.create(model="moltbot", messages=USER)
        assert reply.choices[0].message.content == "done"
        assert reply.choices[0].finish_reason == "stop"
        assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (230, 25)
        assert reply.usage.total_tokens == 255

        llm.push(Reply("streamed with usage", usage=(41, 9), chunk_chars=5))
        stream = await client.chat.completions.create(
            model="moltbot:ops",
            messages=USER,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
            "streamed with usage"
        )
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        last = chunks[-1]
        assert last.choices == [] and last.usage is not None
        assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (41, 9)
        assert all(c.usage is None for c in chunks[:-1])

        stream = await client.chat.completions.create(model="moltbot", messages=USER, stream=True)
        chunks = [chunk async for chunk in stream]
        assert all(c.usage is None and c.choices for c in chunks)  # not asked for: not sent


async def test_finish_reason_length_and_tool_calls(api_gateway, llm):
    sync, _ = clients(api_gateway)

    def calls():  # the sync client, in a thread: the stand-in model runs on this loop
        llm.push(Reply("cut sho", finish="length"))
        reply = sync.chat.completions.create(model="moltbot", messages=USER)
        assert reply.choices[0].finish_reason == "length"
        assert reply.choices[0].message.content == "cut sho"

        llm.push(Reply("cut again", finish="length"))
        stream = sync.chat.completions.create(model="moltbot", messages=USER, stream=True)
        finishes = [c.choices[0].finish_reason for c in stream if c.choices]
        assert finishes[-1] == "length" and finishes.count("length") == 1

        # the agent ends on a tool step when it runs out of steps
        for _ in range(MAX_STEPS):
            llm.push(Reply("step", tool_calls=[("no_such_tool", {})], usage=(1, 1)))
        reply = sync.chat.completions.create(model="moltbot", messages=USER)
        assert reply.choices[0].finish_reason == "tool_calls"
        assert reply.usage.total_tokens == 2 * MAX_STEPS
        steps = "\n\n".join(["step"] * MAX_STEPS)  # one blank line between paragraphs
        assert reply.choices[0].message.content == (
            f"{steps}\n\n(stopped after {MAX_STEPS} tool steps)"
        )

    with sync:
        await asyncio.to_thread(calls)


# ---- errors --------------------------------------------------------------------------------


def test_wrong_or_missing_token_is_401_on_every_api_path(api_gateway):
    gw = api_gateway
    bad = openai.OpenAI(api_key="wrong", base_url=f"{gw.http}/v1", max_retries=0)
    with bad:
        with pytest.raises(openai.AuthenticationError) as caught:
            bad.chat.completions.create(model="moltbot", messages=USER)
        assert caught.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
        with pytest.raises(openai.AuthenticationError):
            bad.models.retrieve("moltbot")
        with pytest.raises(openai.AuthenticationError):  # unknown path: auth first
            bad.get("/nothing/here", cast_to=object)
        with pytest.raises(openai.AuthenticationError):  # wrong method: auth first
            bad.delete("/models", cast_to=object)


async def test_unknown_api_paths_are_json_404_never_the_ui(api_gateway):
    gw = api_gateway
    auth = {"Authorization": f"Bearer {gw.token}"}
    async with aiohttp.ClientSession() as http:
        for method, path in [
            ("GET", "/v1/embeddings"),
            ("POST", "/v1/completions"),
            ("GET", "/v1"),
            ("GET", "/v1/"),
            ("GET", "/v1/models/"),
            ("POST", "/tools/unknown"),  # /tools/invoke exists (off by default)
        ]:
            async with http.request(method, gw.http + path, headers=auth) as response:
                assert response.status == 404, path
                assert response.content_type == "application/json"
                error = (await response.json())["error"]
                assert error["code"] == "unknown_url" and path in error["message"]
            async with http.request(method, gw.http + path) as response:
                assert response.status == 401, path
                assert response.content_type == "application/json"
        async with http.post(gw.http + "/v1/models", headers=auth) as response:
            assert response.status == 405 and response.headers["Allow"] == "GET"
            assert (await response.json())["error"]["code"] == "method_not_allowed"
        async with http.get(gw.http + "/v1/chat/completions", headers=auth) as response:
            assert response.status == 405 and response.headers["Allow"] == "POST"
        async with http.get(gw.http + "/some/ui/route") as response:  # the UI still answers
            assert response.status == 200 and response.content_type == "text/html"


async def test_bad_requests_are_400_with_the_param(api_gateway):
    gw = api_gateway
    _, client = clients(gw)
    async with client:
        with pytest.raises(openai.BadRequestError, match="Missing user message"):
            await client.chat.completions.create(
                model="moltbot", messages=[{"role": "system", "content": "x"}]
            )
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(
                model="moltbot", messages=[{"role": "user", "content": 5}]
            )
        assert caught.value.param == "messages[0].content"
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="moltbot", messages=USER, n=2)
        assert caught.value.param == "n"
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="moltbot", messages=USER * 1001)
        assert caught.value.code == "too_many_messages" and "1000" in caught.value.message
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(
                model="moltbot",
                messages=USER,
                extra_headers={"x-moltbot-agent-id": "ghost"},
            )
        assert caught.value.code == "agent_not_found"
    async with aiohttp.ClientSession() as http:
        auth = {"Authorization": f"Bearer {gw.token}", "Content-Type": "application/json"}
        for body in (b"{not json", b"", b"[1, 2]"):
            async with http.post(
                f"{gw.http}/v1/chat/completions", data=body, headers=auth
            ) as response:
                assert response.status == 400
                assert (await response.json())["error"]["type"] == "invalid_request_error"


async def test_oversized_body_is_413(api_gateway, llm):
    gw = api_gateway
    sync, _ = clients(gw)
    huge = [{"role": "user", "content": "x" * (1024 * 1024)}]

    def calls():
        with pytest.raises(openai.APIStatusError) as caught:
            sync.chat.completions.create(model="moltbot", messages=huge)
        assert caught.value.status_code == 413
        assert caught.value.code == "request_too_large"
        assert "maxBodyBytes" in caught.value.message
        # the connection pool and the gateway are fine afterwards
        assert sync.chat.completions.create(model="moltbot", messages=USER).choices

    with sync:
        await asyncio.to_thread(calls)

    async def chunked():  # no Content-Length: the limit holds while reading
        yield b'{"model": "moltbot", "messages": [{"role": "user", "content": "'
        for _ in range(80):
            yield b"y" * 16384
        yield b'"}]}'

    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{gw.http}/v1/chat/completions",
            data=chunked(),
            headers={"Authorization": f"Bearer {gw.token}"},
        ) as response:
            assert response.status == 413
            assert (await response.json())["error"]["code"] == "request_too_large"
    assert len(llm.requests) == 1  # only the small request reached the model


async def test_rate_limited_model_is_429_with_retry_after(api_gateway, llm):
    gw = api_gateway
    # The stand-in rate-limits m1 and asks for 120 s; the SDK inside the gateway
    # retries at once (retry-after-ms), then the gateway gives up.
    llm.always_for("m1", Fail(429, "slow down", {"retry-after-ms": "1", "retry-after": "120"}))
    _, client = clients(gw)
    async with client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model="moltbot", messages=USER)
        assert caught.value.code == "rate_limit_exceeded"
        assert 110 <= int(caught.value.response.headers["retry-after"]) <= 120
        # streamed: nothing was written yet, so the status is real as well
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model="moltbot", messages=USER, stream=True)
        assert int(caught.value.response.headers["retry-after"]) >= 110
        # a cooling model is still tried: once it answers, so does the API
        llm.always.clear()
        reply = await client.chat.completions.create(model="moltbot", messages=USER)
        assert reply.choices[0].message.content == "echo: hello api"


async def test_failing_model_is_503_with_retry_after_while_cooling(api_gateway, llm):
    llm.always_for("m1", Fail(500, "upstream broke", {"retry-after-ms": "1"}))
    sync, _ = clients(api_gateway)
    with sync, pytest.raises(openai.InternalServerError) as caught:
        await asyncio.to_thread(sync.chat.completions.create, model="moltbot:ops", messages=USER)
    assert caught.value.status_code == 503
    assert caught.value.code == "model_unavailable"
    assert "upstream broke" in caught.value.message
    assert 50 <= int(caught.value.response.headers["retry-after"]) <= 60


async def test_failure_after_streaming_started_is_an_error_event(api_gateway, llm):
    """The model breaks mid-answer and its retry succeeds: text already streamed cannot
    be taken back, so the stream ends with an error event rather than old and new text
    glued together."""
    llm.push(Reply("partial answer that breaks", chunk_chars=4, cut="abort"))
    llm.push(Reply("the whole answer"))
    _, client = clients(api_gateway)
    async with client:
        stream = await client.chat.completions.create(
            model="moltbot", messages=USER, stream=True, user="retried"
        )
        received = []
        with pytest.raises(openai.APIError, match="cannot take text back"):
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content or "")
        assert "the whole answer" not in "".join(received)
        # the session has the answer the retry produced
        again = await client.chat.completions.create(
            model="moltbot", messages=[{"role": "user", "content": "again"}], user="retried"
        )
        assert again.choices[0].message.content
    history = llm.requests[-1]["body"]["messages"]
    assert any("the whole answer" in str(m.get("content")) for m in history)


async def test_a_client_that_goes_away_stops_the_run(api_gateway, llm):
    gw = api_gateway
    llm.push(Reply("z" * 600, chunk_chars=2, chunk_delay=0.02))  # 6 s if nobody stops it
    _, client = clients(gw)
    async with client:
        stream = await client.chat.completions.create(
            model="moltbot", messages=USER, stream=True, user="leaver"
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        await stream.close()

    def aborted() -> bool:
        index = json.loads((gw.state_dir / "agents/main/sessions/sessions.json").read_text())
        return index["agent:main:openai-user:leaver"].get("abortedLastRun") is True

    await wait_for(aborted)
    await wait_for(lambda: llm.active == 0)  # the gateway hung up on the model too


async def test_no_model_configured_is_503(home, llm):
    config = openai_config(llm.base_url)
    config["agents"]["defaults"]["model"] = {"primary": "nowhere/m1"}
    config["gateway"] = {"http": {"endpoints": {"chatCompletions": {"enabled": True}}}}
    gw = start(home, config)
    try:
        _, client = clients(gw)
        async with client:
            with pytest.raises(openai.InternalServerError) as caught:
                await client.chat.completions.create(model="moltbot", messages=USER)
            assert caught.value.status_code == 503
            assert caught.value.code == "model_not_configured"
        assert session_keys(gw, "main") == []  # nothing half-done was recorded
    finally:
        gw.stop()


# ---- sessions ------------------------------------------------------------------------------


async def test_user_continues_the_conversation_and_no_user_is_stateless(api_gateway, llm):
    gw = api_gateway
    _, client = clients(gw)
    async with client:

        async def ask(text, **extra):
            messages = [{"role": "user", "content": text}]
            return await client.chat.completions.create(model="moltbot", messages=messages, **extra)

        await ask("my name is Bob", user="bob")
        await ask("what is my name?", user="bob")
        assert "my name is Bob" in sent_texts(llm)  # from the session's transcript
        # a client that sends the whole conversation every time: the session already
        # holds the earlier turns, so they are not folded in a second time
        await client.chat.completions.create(
            model="moltbot",
            user="bob",
            messages=[
                {"role": "user", "content": "my name is Bob"},
                {"role": "assistant", "content": "echo: my name is Bob"},
                {"role": "user", "content": "what is my name?"},
                {"role": "assistant", "content": "echo: what is my name?"},
                {"role": "user", "content": "and again?"},
            ],
        )
        sent = llm.requests[-1]["body"]["messages"]
        users = [m["content"] for m in sent if m["role"] == "user"]
        assert users == ["my name is Bob", "what is my name?", "and again?"]
        await ask("what is my name?", user="carol")
        assert "my name is Bob" not in sent_texts(llm)
        await ask("what is my name?", user="Bob")  # another user: case matters
        assert "my name is Bob" not in sent_texts(llm)
        await ask("what is my name?")
        await ask("what is my name?")
        assert "my name is Bob" not in sent_texts(llm)

        # the header names a conversation of its own
        named = {"X-Moltbot-Session": "Project Alpha"}
        await ask("the codeword is heron", extra_headers=named)
        await ask("what is the codeword?", extra_headers=named)
        assert "the codeword is heron" in sent_texts(llm)
        await ask("what is the codeword?", extra_headers={"X-Moltbot-Session": "project-beta"})
        assert "heron" not in sent_texts(llm)

    keys = session_keys(gw, "main")
    assert "agent:main:openai-user:bob" in keys and "agent:main:openai-user:carol" in keys
    assert "agent:main:openai-session:project-beta" in keys
    hashed = [k for k in keys if k.startswith("agent:main:openai-user:~")]
    assert len(hashed) == 1  # "Bob"
    assert len([k for k in keys if k.startswith("agent:main:openai-session:~")]) == 1
    assert len([k for k in keys if k.startswith("agent:main:openai:")]) == 2  # stateless


# ---- the switch ----------------------------------------------------------------------------


async def test_disabled_api_is_404_after_auth(home, llm):
    gw = start(home, openai_config(llm.base_url))
    try:
        good = openai.AsyncOpenAI(api_key=gw.token, base_url=f"{gw.http}/v1", max_retries=0)
        bad = openai.AsyncOpenAI(api_key="nope", base_url=f"{gw.http}/v1", max_retries=0)
        async with good, bad:
            with pytest.raises(openai.NotFoundError) as caught:
                await good.chat.completions.create(model="moltbot", messages=USER)
            assert caught.value.code == "endpoint_disabled"
            with pytest.raises(openai.NotFoundError):
                await good.models.list()
            with pytest.raises(openai.AuthenticationError):
                await bad.models.list()
        assert llm.requests == []
    finally:
        gw.stop()
