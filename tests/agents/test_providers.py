"""The real openai/anthropic SDKs against the stand-in servers' wire formats."""

import pytest
from tests.fakes.llm_anthropic import FakeAnthropic
from tests.fakes.llm_openai import FakeOpenAI
from tests.fakes.llm_script import Fail, Reply

from moltbot.agents.providers import (
    AssistantMessage,
    Finished,
    ModelRequest,
    ProviderError,
    TextDelta,
    ToolResultMessage,
    ToolSpec,
    UserMessage,
    build,
)

TOOL = ToolSpec(
    "write",
    "Write a file",
    {
        "type": "object",
        "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["path"],
    },
)


@pytest.fixture(params=["openai", "anthropic"])
async def fake(request):
    server = (
        FakeOpenAI(api_key="sk-test")
        if request.param == "openai"
        else FakeAnthropic(api_key="sk-test")
    )
    async with server:
        api = "openai-completions" if request.param == "openai" else "anthropic-messages"
        provider = build(api, request.param, server.base_url, "sk-test")
        try:
            yield server, provider
        finally:
            await provider.close()


async def collect(provider, request):
    events = [e async for e in provider.stream(request)]
    assert isinstance(events[-1], Finished)
    return events


def req(*messages, tools=(TOOL,), timeout=10.0):
    return ModelRequest("m1", "You are terse.", tuple(messages), tools, timeout=timeout)


async def test_text_stream(fake):
    server, provider = fake
    server.push(Reply("Hello there, friend", chunk_chars=4, usage=(30, 9)))
    events = await collect(provider, req(UserMessage("hi")))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 3 and "".join(deltas) == "Hello there, friend"
    done = events[-1]
    assert done.message.text == "Hello there, friend" and done.stop_reason == "stop"
    assert (done.usage.input, done.usage.output) == (30, 9)
    body = server.requests[0]["body"]
    assert body["stream"] is True and body["model"] == "m1"


async def test_tool_calls_and_history_round_trip(fake):
    server, provider = fake
    server.push(Reply("Writing.", tool_calls=[("write", {"path": "a.txt", "content": "x"})]))
    events = await collect(provider, req(UserMessage("write it")))
    done = events[-1]
    assert done.stop_reason == "toolUse"
    (call,) = done.message.tool_calls
    assert call.name == "write" and dict(call.arguments) == {"path": "a.txt", "content": "x"}
    server.push(Reply("Done."))
    history = (
        UserMessage("write it"),
        done.message,
        ToolResultMessage(call.id, "write", "wrote 1 byte"),
    )
    events = await collect(provider, req(*history))
    assert events[-1].message.text == "Done."
    sent = server.requests[1]["body"]
    if isinstance(server, FakeOpenAI):
        assert sent["messages"][0]["role"] == "system"
        assert sent["messages"][2]["tool_calls"][0]["id"] == call.id
        assert sent["messages"][3] == {
            "role": "tool",
            "tool_call_id": call.id,
            "content": "wrote 1 byte",
        }
        assert sent["tools"][0]["function"]["name"] == "write"
    else:
        assert sent["system"] == "You are terse."
        assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
        assert sent["messages"][2]["content"][0]["tool_use_id"] == call.id
        assert sent["tools"][0]["input_schema"]["required"] == ["path"]


async def test_invalid_tool_arguments_are_reported_not_raised(fake):
    server, provider = fake
    server.push(Reply("", tool_calls=[("write", {})], raw_arguments='{"path": '))
    events = await collect(provider, req(UserMessage("x")))
    (call,) = events[-1].message.tool_calls
    assert call.error and "not valid JSON" in call.error


@pytest.mark.parametrize(
    ("status", "kind"), [(429, "rate_limit"), (500, "server"), (401, "auth"), (400, "bad_request")]
)
async def test_http_errors_are_classified(fake, status, kind):
    server, provider = fake
    server.push(Fail(status, "nope", headers={"retry-after": "7"}))
    with pytest.raises(ProviderError) as info:
        await collect(provider, req(UserMessage("x")))
    assert info.value.kind == kind and info.value.status == status
    assert info.value.failover == (kind != "bad_request")
    if status == 429:
        assert info.value.retry_after == 7


@pytest.mark.parametrize("how", ["abort", "eof"])
async def test_cut_stream_is_malformed(fake, how):
    server, provider = fake
    server.push(Reply("a long answer that will be cut off", chunk_chars=3, cut=how))
    with pytest.raises(ProviderError) as info:
        await collect(provider, req(UserMessage("x")))
    assert info.value.kind == "malformed" and info.value.failover


async def test_idle_timeout(fake):
    server, provider = fake
    server.push(Reply(hang=True))
    with pytest.raises(ProviderError) as info:
        await collect(provider, req(UserMessage("x"), timeout=0.3))
    assert info.value.kind == "timeout"


async def test_wrong_key_is_auth(fake):
    server, _ = fake
    api = "openai-completions" if isinstance(server, FakeOpenAI) else "anthropic-messages"
    provider = build(api, "p", server.base_url, "wrong")
    try:
        with pytest.raises(ProviderError) as info:
            await collect(provider, req(UserMessage("x")))
        assert info.value.kind == "auth"
    finally:
        await provider.close()


def test_unknown_api():
    with pytest.raises(ProviderError) as info:
        build("google-generative-ai", "g", "http://x", None)
    assert info.value.kind == "unconfigured"


def test_anthropic_alternation():
    from moltbot.agents.providers.anthropic_messages import to_anthropic_messages

    request = req(UserMessage("a"), UserMessage("b"), AssistantMessage("c"))
    out = to_anthropic_messages(request)
    assert [m["role"] for m in out] == ["user", "assistant"]
    assert len(out[0]["content"]) == 2


async def test_error_messages_never_carry_keys(fake):
    server, provider = fake
    server.push(Fail(500, "Incorrect API key provided: sk-test-0123456789abcdef. Check it."))
    with pytest.raises(ProviderError) as info:
        await collect(provider, req(UserMessage("x")))
    assert "sk-test-0123" not in info.value.message and "***" in info.value.message


async def test_a_closed_client_is_our_failure_not_the_models(fake):
    server, provider = fake
    await provider.close()
    with pytest.raises(ProviderError) as info:
        await collect(provider, req(UserMessage("x")))
    assert info.value.kind == "internal" and info.value.internal
    assert not info.value.failover and not info.value.transient


async def test_closing_the_client_mid_stream_is_internal(fake):
    """What a hot reload used to do to a run in flight: never the model's fault."""
    server, provider = fake
    server.push(Reply("slow words " * 50, chunk_chars=2, chunk_delay=0.01))
    events = []
    with pytest.raises(ProviderError) as info:
        async for event in provider.stream(req(UserMessage("x"))):
            events.append(event)
            if len(events) == 3:
                await provider.close()
    assert info.value.kind == "internal", info.value.describe()
    assert not info.value.failover


async def test_provider_failures_are_transient_or_not(fake):
    server, provider = fake
    server.push(Fail(503), Fail(400))
    with pytest.raises(ProviderError) as info:
        await collect(provider, req(UserMessage("x")))
    assert info.value.transient and not info.value.internal
    with pytest.raises(ProviderError) as info:
        await collect(provider, req(UserMessage("x")))
    assert not info.value.transient and not info.value.failover
