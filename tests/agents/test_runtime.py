"""The agent loop, embedded (no gateway), against the stand-in LLM servers."""

import asyncio
import json

import pytest
from tests.channels.channel_helpers import wait_for
from tests.fakes.llm_anthropic import FakeAnthropic
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Fail, Reply


@pytest.fixture
async def openai_fake():
    async with FakeOpenAI(api_key="sk-test") as server:
        yield server


async def transcript(runtime, key="agent:main:main"):
    store = runtime.store("main")
    entry = await store.get(key)
    return [e["message"] for e in await store.messages(entry)]


async def test_no_model_configured_explains_how(make_runtime):
    runtime, events = await make_runtime({}, env={})
    reply = await runtime.respond("main", "main", "hello?")
    assert "no AI model is configured" in reply and "moltbot onboard" in reply
    assert "OPENAI_API_KEY" in reply
    (final,) = [c for c in events.chat() if c["state"] == "final"]
    assert final["stopReason"] == "notice"
    messages = await transcript(runtime)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["stopReason"] == "notice"


async def test_model_without_key_names_the_missing_key(make_runtime):
    runtime, _ = await make_runtime({"agents": {"defaults": {"model": "openai/gpt-4o"}}})
    reply = await runtime.respond("main", "main", "hi")
    assert "openai/gpt-4o: no API key" in reply and "OPENAI_API_KEY" in reply


async def test_builtin_provider_key_from_env_and_credentials(make_runtime, openai_fake, tmp_path):
    config = {
        "models": {"providers": {"openai": {"baseUrl": openai_fake.base_url}}},
        "agents": {"defaults": {"model": "openai/gpt-x"}},
    }
    runtime, _ = await make_runtime(config, env={"OPENAI_API_KEY": "sk-test"})
    assert await runtime.respond("main", "main", "one") == "echo: one"
    assert openai_fake.requests[-1]["headers"]["Authorization"] == "Bearer sk-test"
    assert "sk-test" not in repr(runtime.models.providers)


async def test_text_turn_streams_and_records_usage(make_runtime, openai_fake):
    runtime, events = await make_runtime(openai_config(openai_fake.base_url))
    openai_fake.push(
        Reply("Hello from the stand-in", chunk_chars=3, chunk_delay=0.01, usage=(40, 8))
    )
    run = await runtime.submit("main", "main", "hi")
    await run.done
    assert run.state == "ok" and run.text == "Hello from the stand-in"
    chats = events.chat(run.id)
    assert [c["state"] for c in chats][-1] == "final"
    assert chats[0]["state"] == "delta"
    assert [c["seq"] for c in chats] == list(range(1, len(chats) + 1))
    assert chats[-1]["message"]["content"][0]["text"] == "Hello from the stand-in"
    assert chats[-1]["usage"]["totalTokens"] == 48
    deltas = events.agent(run.id, "assistant")
    assert "".join(d["data"]["delta"] for d in deltas) == "Hello from the stand-in"
    lifecycle = [a["data"]["phase"] for a in events.agent(run.id, "lifecycle")]
    assert lifecycle == ["start", "end"]
    seqs = [a["seq"] for a in events.agent(run.id)]
    assert seqs == list(range(1, len(seqs) + 1))
    entry = await runtime.store("main").get("agent:main:main")
    assert (entry.input_tokens, entry.output_tokens, entry.total_tokens) == (40, 8, 48)
    assert entry.model == "m1" and entry.model_provider == "fake"
    body = openai_fake.requests[0]["body"]
    system = body["messages"][0]["content"]
    assert "Project Context" in system and "## SOUL.md" in system
    assert {t["function"]["name"] for t in body["tools"]} >= {"read", "write", "edit", "exec"}


async def test_tool_loop_writes_and_reads_back(make_runtime, openai_fake, tmp_path):
    runtime, events = await make_runtime(openai_config(openai_fake.base_url))
    openai_fake.push(
        Reply("Saving.", tool_calls=[("write", {"path": "notes/a.txt", "content": "lobster"})]),
        Reply("", tool_calls=[("read", {"path": "notes/a.txt"})]),
        Reply("The file says lobster."),
    )
    reply = await runtime.respond("main", "main", "write and read")
    assert reply == "Saving.\n\nThe file says lobster."
    assert (tmp_path / "workspace" / "notes" / "a.txt").read_text() == "lobster"
    third = openai_fake.requests[2]["body"]["messages"]
    tool_msgs = [m for m in third if m["role"] == "tool"]
    assert tool_msgs[0]["content"].startswith("Wrote 7 bytes")
    assert tool_msgs[1]["content"] == "lobster"
    roles = [m["role"] for m in await transcript(runtime)]
    assert roles == ["user", "assistant", "toolResult", "assistant", "toolResult", "assistant"]
    tools = events.agent(stream="tool")
    assert [(t["data"]["phase"], t["data"]["name"]) for t in tools] == [
        ("start", "write"),
        ("result", "write"),
        ("start", "read"),
        ("result", "read"),
    ]


async def test_tool_errors_go_back_to_the_model(make_runtime, openai_fake):
    runtime, _ = await make_runtime(openai_config(openai_fake.base_url))
    openai_fake.push(
        Reply("", tool_calls=[("read", {"path": "../../etc/passwd"}), ("nope", {})]),
        Reply("", tool_calls=[("write", {})], raw_arguments="{broken"),
        Reply("ok"),
    )
    assert await runtime.respond("main", "main", "x") == "ok"
    second = [m for m in openai_fake.requests[1]["body"]["messages"] if m["role"] == "tool"]
    assert "outside the workspace" in second[0]["content"]
    assert "unknown tool 'nope'" in second[1]["content"]
    third = [m for m in openai_fake.requests[2]["body"]["messages"] if m["role"] == "tool"]
    assert "not valid JSON" in third[-1]["content"]


async def test_abort_stops_at_once_and_is_recorded(make_runtime, openai_fake):
    runtime, events = await make_runtime(openai_config(openai_fake.base_url))
    openai_fake.push(Reply("partial answer " * 50, chunk_chars=5, chunk_delay=0.05))
    run = await runtime.submit("main", "main", "talk a lot")
    for _ in range(100):
        if len(run.text) > 10:
            break
        await asyncio.sleep(0.01)
    started = asyncio.get_running_loop().time()
    assert await runtime.abort("agent:main:main") == [run.id]
    assert asyncio.get_running_loop().time() - started < 0.5
    assert run.state == "aborted"
    assert events.chat(run.id)[-1]["state"] == "aborted"
    messages = await transcript(runtime)
    assert messages[-1]["stopReason"] == "aborted"
    assert messages[-1]["content"][0]["text"].startswith("partial")
    entry = await runtime.store("main").get("agent:main:main")
    assert entry.aborted_last_run is True
    assert await runtime.respond("main", "main", "again") == "echo: again"


async def test_messages_queue_per_session_in_order(make_runtime, openai_fake):
    runtime, events = await make_runtime(openai_config(openai_fake.base_url))
    openai_fake.push(Reply("first", first_delay=0.3))
    runs = [await runtime.submit("main", "main", f"m{i}") for i in range(3)]
    other = await runtime.submit("main", "side", "elsewhere")
    await other.done
    assert runs[0].state == "running" and runs[1].state == "queued"
    await asyncio.gather(*(r.done for r in runs))
    assert [r.text for r in runs] == ["first", "echo: m1", "echo: m2"]
    assert runs[0].ended_at <= runs[1].started_at
    roles = [
        (m["role"], m["content"] if m["role"] == "user" else m["content"][0]["text"])
        for m in await transcript(runtime)
    ]
    assert roles == [
        ("user", "m0"),
        ("assistant", "first"),
        ("user", "m1"),
        ("assistant", "echo: m1"),
        ("user", "m2"),
        ("assistant", "echo: m2"),
    ]
    # the third request saw the conversation in order
    sent = [m["role"] for m in openai_fake.requests[-1]["body"]["messages"]]
    assert sent == ["system", "user", "assistant", "user", "assistant", "user"]


async def test_abort_clears_queued_runs(make_runtime, openai_fake):
    runtime, events = await make_runtime(openai_config(openai_fake.base_url))
    openai_fake.push(Reply(hang=True))
    first = await runtime.submit("main", "main", "a")
    second = await runtime.submit("main", "main", "b")
    await wait_for(lambda: openai_fake.active)  # the first run is at the model
    assert first.state == "running" and second.state == "queued"
    aborted = await runtime.abort("agent:main:main")
    assert set(aborted) == {first.id, second.id}
    await asyncio.wait_for(asyncio.gather(first.done, second.done), 2)
    assert first.state == second.state == "aborted"


async def test_fallback_and_cooldown(make_runtime, openai_fake, caplog):
    config = openai_config(openai_fake.base_url, "big", "small", fallbacks=["fake/small"])
    runtime, _ = await make_runtime(config)
    openai_fake.always_for("big", Fail(429, "slow down"))
    openai_fake.push(Reply("from small"), model="small")
    with caplog.at_level("INFO"):
        assert await runtime.respond("main", "main", "hi") == "from small"
    assert "model fake/big failed (rate_limit 429" in caplog.text
    assert "answered by fake/small" in caplog.text
    big_calls = sum(1 for r in openai_fake.requests if r["body"]["model"] == "big")
    assert big_calls == 1  # no SDK retries when a fallback exists
    assert await runtime.respond("main", "main", "again") == "echo: again"
    assert sum(1 for r in openai_fake.requests if r["body"]["model"] == "big") == 1
    assert "fake/big" in runtime.status()["cooldowns"]


@pytest.mark.parametrize(
    "failure", [Fail(500), Reply("cut me off here", cut="abort"), Reply("cut", cut="eof")]
)
async def test_fallback_on_server_errors_and_broken_streams(make_runtime, openai_fake, failure):
    config = openai_config(openai_fake.base_url, "a", "b", fallbacks=["fake/b"])
    runtime, events = await make_runtime(config)
    openai_fake.push(failure, model="a")
    openai_fake.push(Reply("fine"), model="b")
    run = await runtime.submit("main", "main", "x")
    await run.done
    assert run.text == "fine" and run.model == "fake/b"
    assert events.chat(run.id)[-1]["message"]["content"][0]["text"] == "fine"


async def test_all_models_failing_is_an_error(make_runtime, openai_fake):
    config = openai_config(openai_fake.base_url, "a", "b", fallbacks=["fake/b"])
    runtime, events = await make_runtime(config)
    openai_fake.always_for("a", Fail(503))
    openai_fake.always_for("b", Fail(503))
    run = await runtime.submit("main", "main", "x")
    await run.done
    assert run.state == "error" and "every model failed" in run.error
    assert run.reply_text().startswith("⚠️")
    assert events.chat(run.id)[-1]["state"] == "error"
    messages = await transcript(runtime)
    assert messages[-1]["stopReason"] == "error"
    # error replies never go back to a model
    openai_fake.always.clear()
    await runtime.respond("main", "main", "y")
    sent = openai_fake.requests[-1]["body"]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "user"]


async def test_timeout(make_runtime, openai_fake):
    runtime, events = await make_runtime(openai_config(openai_fake.base_url))
    openai_fake.push(Reply(hang=True))
    run = await runtime.submit("main", "main", "x", timeout=0.3)
    await asyncio.wait_for(run.done, 3)
    assert run.state == "timeout" and run.error_code == "AGENT_TIMEOUT"
    assert events.chat(run.id)[-1]["state"] == "error"


async def test_anthropic_provider_end_to_end(make_runtime, tmp_path):
    async with FakeAnthropic(api_key="ak") as fake:
        config = {
            "models": {"providers": {"anthropic": {"baseUrl": fake.base_url}}},
            "agents": {"defaults": {"model": "anthropic/claude-test"}},
        }
        runtime, _ = await make_runtime(config, env={"ANTHROPIC_API_KEY": "ak"})
        fake.push(
            Reply("", tool_calls=[("write", {"path": "x.md", "content": "hi"})]), Reply("Written.")
        )
        assert await runtime.respond("main", "main", "go") == "Written."
        assert (tmp_path / "workspace" / "x.md").read_text() == "hi"
        body = fake.requests[1]["body"]
        assert body["messages"][-1]["content"][0]["type"] == "tool_result"


async def test_inject_history_and_sessions(make_runtime, openai_fake):
    runtime, events = await make_runtime(openai_config(openai_fake.base_url))
    await runtime.respond("main", "main", "hello")
    result = await runtime.inject("main", "a note from the operator", label="note")
    assert result["ok"] and result["messageId"]
    history = await runtime.history("agent:main:main")
    assert [m["role"] for m in history["messages"]] == ["user", "assistant", "assistant"]
    assert history["messages"][-1]["stopReason"] == "injected"
    rows = await runtime.list_sessions(titles=True, last_message=True)
    assert rows[0]["key"] == "agent:main:main" and rows[0]["derivedTitle"] == "hello"
    assert rows[0]["lastMessagePreview"] == "a note from the operator"
    index = json.loads((runtime.store("main").index_path).read_text())
    assert "agent:main:main" in index


async def test_multi_agent_workspaces_and_models(make_runtime, openai_fake, tmp_path):
    config = openai_config(openai_fake.base_url, "m1", "m2")
    config["agents"]["list"] = [{"id": "main", "default": True}, {"id": "ops", "model": "fake/m2"}]
    runtime, _ = await make_runtime(config)
    assert runtime.resolve_agent(None) == "main"
    assert runtime.workspace("ops") == tmp_path / "workspace-ops"
    await runtime.respond("ops", "agent:ops:main", "hi ops")
    assert openai_fake.requests[-1]["body"]["model"] == "m2"
    assert (tmp_path / ".clawdbot" / "agents" / "ops" / "sessions" / "sessions.json").exists()
    listed = runtime.agents_list()
    assert [a["id"] for a in listed["agents"]] == ["main", "ops"]
    assert listed["agents"][1]["model"] == "fake/m2"
    models = runtime.models_list()["models"]
    assert {(m["provider"], m["id"]) for m in models} >= {("fake", "m1"), ("fake", "m2")}
    with pytest.raises(Exception, match="unknown agent"):
        runtime.resolve_agent("nobody")


async def test_reconfigure_applies_a_new_model_live(make_runtime, openai_fake):
    from moltbot.config.schema import Config

    runtime, _ = await make_runtime({})
    assert "no AI model" in await runtime.respond("main", "main", "hi")
    config = openai_config(openai_fake.base_url)
    config["agents"]["defaults"]["workspace"] = str(runtime.workspace("main"))
    assert await runtime.reconfigure(Config.model_validate(config)) is True
    assert await runtime.respond("main", "main", "now?") == "echo: now?"
    # the notice never reaches the model
    sent = openai_fake.requests[-1]["body"]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "user"]


async def test_fallback_across_providers(make_runtime, openai_fake):
    async with FakeAnthropic(api_key="ak") as claude:
        config = openai_config(openai_fake.base_url, "gpt", fallbacks=["claude/sonnet"])
        config["models"]["providers"]["claude"] = {
            "baseUrl": claude.base_url,
            "apiKey": "ak",
            "api": "anthropic-messages",
        }
        runtime, _ = await make_runtime(config)
        openai_fake.always_for("gpt", Fail(503, "overloaded"))
        claude.push(
            Reply("", tool_calls=[("write", {"path": "f.txt", "content": "ok"})]),
            Reply("Claude wrote it."),
        )
        run = await runtime.submit("main", "main", "write f.txt")
        await run.done
        assert run.text == "Claude wrote it." and run.model == "claude/sonnet"
        assert claude.requests[0]["body"]["model"] == "sonnet"
        assert (runtime.workspace("main") / "f.txt").read_text() == "ok"


# ---- change never breaks a turn ------------------------------------------------


def _config(base_url, runtime, **provider):
    from moltbot.config.schema import Config

    config = openai_config(base_url)
    config["agents"]["defaults"]["workspace"] = str(runtime.workspace("main"))
    config["models"]["providers"]["fake"].update(provider)
    return Config.model_validate(config)


async def _first_text(events, run):
    while not any(p["stream"] == "assistant" for p in events.agent(run.id)):
        await asyncio.sleep(0.005)


async def test_reconfigure_mid_stream_retires_the_client(make_runtime, openai_fake):
    runtime, events = await make_runtime(openai_config(openai_fake.base_url))
    openai_fake.push(Reply("streamed slowly " * 20, chunk_chars=4, chunk_delay=0.01))
    run = await runtime.submit("main", "main", "story")
    await _first_text(events, run)
    old = runtime.models.client(runtime.models.providers["fake"])
    # an unrelated change keeps the client; a change of the provider retires it
    await runtime.reconfigure(_config(openai_fake.base_url, runtime))
    assert runtime.models.client(runtime.models.providers["fake"]) is old
    await runtime.reconfigure(_config(openai_fake.base_url, runtime, headers={"X-New": "1"}))
    assert runtime.models.retired() == 1 and not old.closed  # still streaming through it
    await run.done
    assert run.state == "ok" and run.text == "streamed slowly " * 20
    await asyncio.sleep(0)  # the close is scheduled when the last lease ends
    assert runtime.models.retired() == 0 and runtime.models.in_use() == 0
    for _ in range(100):
        if old.closed:
            break
        await asyncio.sleep(0.01)
    assert old.closed
    assert await runtime.respond("main", "main", "next") == "echo: next"
    assert openai_fake.requests[-1]["headers"]["x-new"] == "1"
    assert runtime.status()["cooldowns"] == {}


async def test_an_internal_failure_never_cools_a_model_down(make_runtime, openai_fake):
    runtime, events = await make_runtime(openai_config(openai_fake.base_url))
    openai_fake.push(Reply("streamed slowly " * 20, chunk_chars=4, chunk_delay=0.01))
    run = await runtime.submit("main", "main", "story")
    await _first_text(events, run)
    await runtime.models.client(runtime.models.providers["fake"]).close()  # a bug of ours
    await run.done
    assert run.state == "error" and run.error.startswith("internal"), run.error
    assert runtime.status()["cooldowns"] == {}
    assert await runtime.respond("main", "main", "next") == "echo: next"


async def test_the_only_model_is_retried_with_backoff(make_runtime, openai_fake, caplog):
    config = openai_config(openai_fake.base_url)
    config["agents"]["defaults"]["modelRetry"] = {"attempts": 3, "minDelayMs": 10}
    runtime, events = await make_runtime(config)
    openai_fake.push(Fail(503, "overloaded"), Reply("half an answer, then", cut="abort"))
    with caplog.at_level("INFO"):
        run = await runtime.submit("main", "main", "x")
        await run.done
    assert run.state == "ok" and run.text == "echo: x"
    assert len(openai_fake.requests) == 3
    assert "retry 1/2" in caplog.text and "retry 2/2" in caplog.text
    assert "answered by fake/m1 on try 3" in caplog.text
    assert runtime.status()["cooldowns"] == {}
    # the cut try's partial text was taken back before the retry
    assert any(p["data"].get("reset") for p in events.agent(run.id, "assistant"))


async def test_a_retry_after_beyond_the_backoff_limit_is_not_waited_for(make_runtime, openai_fake):
    config = openai_config(openai_fake.base_url)
    config["agents"]["defaults"]["modelRetry"] = {"maxDelayMs": 1000}
    runtime, _ = await make_runtime(config)
    openai_fake.push(Fail(429, "later", headers={"retry-after": "30"}))
    run = await runtime.submit("main", "main", "x")
    await run.done
    assert run.state == "error" and len(openai_fake.requests) == 1
    assert "fake/m1" in runtime.status()["cooldowns"]  # a real failure of the provider


async def test_drain_lets_runs_finish_then_aborts_the_rest(make_runtime, openai_fake):
    from moltbot.errors import RetryLaterError

    runtime, events = await make_runtime(openai_config(openai_fake.base_url))
    openai_fake.push(Reply("quick"), model="m1")
    done = await runtime.submit("main", "a", "one")
    report = await runtime.drain(5.0)
    assert report == {"inFlight": 1, "aborted": 0} and done.state == "ok"
    with pytest.raises(RetryLaterError):
        await runtime.submit("main", "b", "refused while draining")
    runtime.accepting = True
    openai_fake.push(Reply("very slow " * 200, chunk_chars=2, chunk_delay=0.02))
    slow = await runtime.submit("main", "main", "long")
    queued = await runtime.submit("main", "main", "behind it")
    await _first_text(events, slow)
    report = await runtime.drain(0.2)
    assert report == {"inFlight": 2, "aborted": 2}
    assert slow.state == "aborted" and slow.interrupted and queued.state == "aborted"
    assert events.chat(slow.id)[-1]["errorMessage"] == "aborted: gateway restarting"
    assert events.chat(queued.id)[-1]["errorMessage"] == "aborted: gateway restarting"
    messages = await transcript(runtime)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    cut, never = messages[1], messages[3]
    assert cut["interrupted"] and cut["content"][0]["text"].startswith("very slow")
    assert never["interrupted"] and never["content"] == []
    assert not list(runtime.journal("main").directory.glob("*.json"))
