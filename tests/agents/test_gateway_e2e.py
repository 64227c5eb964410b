"""Agents end to end: a real gateway subprocess, WS protocol v3, a stand-in model server."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid

import pytest
from tests.agents.gateway_agents import (
    agent_events,
    chat_events,
    is_chat,
)
from tests.channels.channel_helpers import wait_for
from tests.fakes.llm_openai import openai_config
from tests.fakes.llm_script import Fail, Reply

from gateway_harness import MethodFailed, ws_client


def key() -> str:
    return str(uuid.uuid4())


async def send(client, text, session="main", **extra):
    return await client.call(
        "chat.send", {"sessionKey": session, "message": text, "idempotencyKey": key(), **extra}
    )


async def test_chat_with_tools_streams_and_persists(home, llm, gateways):
    gw = gateways(home, openai_config(llm.base_url))
    llm.push(
        Reply(
            "Let me save that.",
            chunk_chars=4,
            chunk_delay=0.02,
            tool_calls=[("write", {"path": "todo.md", "content": "- buy lobster"})],
        ),
        Reply("", tool_calls=[("read", {"path": "todo.md"})]),
        Reply("Saved: - buy lobster", chunk_chars=3, chunk_delay=0.02),
    )
    async with ws_client(gw.url, gw.token, client_id="webchat-ui", mode="webchat") as client:
        ack = await send(client, "remember to buy lobster")
        assert ack["status"] == "started"
        final = await client.wait_event(is_chat(ack["runId"], "final"), timeout=20)
        assert (
            final["payload"]["message"]["content"][0]["text"]
            == "Let me save that.\n\nSaved: - buy lobster"
        )
        assert final["payload"]["sessionKey"] == "agent:main:main"
        chats = chat_events(client, ack["runId"])
        assert chats[0]["state"] == "delta" and len(chats) >= 2
        tools = agent_events(client, ack["runId"], "tool")
        assert [(t["data"]["phase"], t["data"]["name"]) for t in tools] == [
            ("start", "write"),
            ("result", "write"),
            ("start", "read"),
            ("result", "read"),
        ]
        assert tools[-1]["data"]["result"] == "- buy lobster"
        seqs = [a["seq"] for a in agent_events(client, ack["runId"])]
        assert seqs == list(range(1, len(seqs) + 1))
        history = await client.call("chat.history", {"sessionKey": "main"})
        roles = [m["role"] for m in history["messages"]]
        assert roles == ["user", "assistant", "toolResult", "assistant", "toolResult", "assistant"]
        assert history["messages"][1]["content"][1]["type"] == "toolCall"
    assert (home / "clawd-main" / "todo.md").read_text() == "- buy lobster"
    index = json.loads((gw.state_dir / "agents/main/sessions/sessions.json").read_text())
    entry = index["agent:main:main"]
    assert entry["totalTokens"] == 3 * (12 + 7)
    assert (gw.state_dir / f"agents/main/sessions/{entry['sessionId']}.jsonl").exists()


async def test_abort_and_queue(home, llm, gateways):
    gw = gateways(home, openai_config(llm.base_url))
    llm.push(Reply("word " * 400, chunk_chars=5, chunk_delay=0.03))
    async with ws_client(gw.url, gw.token) as client:
        first = await send(client, "long story")
        queued = await send(client, "and then?")
        await client.wait_event(is_chat(first["runId"], "delta"), timeout=10)
        aborted = await client.call(
            "chat.abort", {"sessionKey": "agent:main:main", "runId": first["runId"]}
        )
        assert aborted == {"ok": True, "aborted": True, "runIds": [first["runId"]]}
        await client.wait_event(is_chat(first["runId"], "aborted"), timeout=5)
        final = await client.wait_event(is_chat(queued["runId"], "final"), timeout=10)
        assert final["payload"]["message"]["content"][0]["text"] == "echo: and then?"
        history = await client.call("chat.history", {"sessionKey": "main"})
        messages = history["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
        assert messages[1]["stopReason"] == "aborted"
        assert messages[1]["content"][0]["text"].startswith("word")
        # /stop from the chat box aborts too
        llm.push(Reply(hang=True))
        run = await send(client, "hang")
        await wait_for(lambda: llm.active)  # the run is at the model
        stop = await send(client, "/stop")
        assert stop["aborted"] and stop["runIds"] == [run["runId"]]


async def test_fallback_and_idempotency(home, llm, gateways):
    gw = gateways(home, openai_config(llm.base_url, "big", "small", fallbacks=("fake/small",)))
    llm.always_for("big", Fail(429, "too many"))
    async with ws_client(gw.url, gw.token) as client:
        idem = key()
        params = {"sessionKey": "main", "message": "hi", "idempotencyKey": idem}
        ack = await client.call("chat.send", params)
        again = await client.call("chat.send", params)
        assert again["runId"] == ack["runId"] and again["status"] in ("in_flight", "started")
        final = await client.wait_event(is_chat(idem, "final"), timeout=15)
        assert final["payload"]["message"]["content"][0]["text"] == "echo: hi"
        assert (await client.call("chat.send", params))["status"] == "ok"
        user_turns = [r for r in llm.requests if r["body"]["model"] == "small"]
        assert len(user_turns) == 1
    log = gw.output()
    assert "model fake/big failed (rate_limit 429" in log and "answered by fake/small" in log
    assert "sk-test" not in log


async def test_agent_two_stage_and_wait(home, llm, gateways):
    gw = gateways(home, openai_config(llm.base_url))
    async with ws_client(gw.url, gw.token) as client:
        idem = key()
        frame = await client.request(
            "agent", {"message": "ping", "idempotencyKey": idem, "sessionKey": "agent:main:api"}
        )
        assert frame["ok"] and frame["payload"]["status"] == "accepted"
        assert frame["payload"]["runId"] == idem
        waited = await client.call("agent.wait", {"runId": idem, "timeoutMs": 10_000})
        assert waited["status"] == "ok" and waited["endedAt"] >= waited["startedAt"]
        for _ in range(100):
            if client.second_response(frame["id"]):
                break
            await asyncio.sleep(0.05)
        (second,) = client.second_response(frame["id"])
        assert second["ok"] and second["payload"]["status"] == "ok"
        assert second["payload"]["result"]["text"] == "echo: ping"
        replay = await client.request("agent", {"message": "ping", "idempotencyKey": idem})
        assert replay["payload"]["status"] == "ok"
        llm.always_for("m1", Fail(500))
        failed = key()
        frame = await client.request(
            "agent", {"message": "x", "idempotencyKey": failed}, timeout=20
        )
        assert frame["payload"]["status"] == "accepted"
        for _ in range(200):
            if client.second_response(frame["id"]):
                break
            await asyncio.sleep(0.05)
        (second,) = client.second_response(frame["id"])
        assert not second["ok"] and second["error"]["code"] == "UNAVAILABLE"
        assert second["error"]["details"]["runId"] == failed


async def test_kill_9_mid_stream_keeps_history(home, llm, gateways):
    gw = gateways(home, openai_config(llm.base_url))
    async with ws_client(gw.url, gw.token) as client:
        ack = await send(client, "first question")
        await client.wait_event(is_chat(ack["runId"], "final"), timeout=10)
        llm.push(Reply("a very slow answer " * 100, chunk_chars=4, chunk_delay=0.05))
        doomed = await send(client, "second question")
        await client.wait_event(is_chat(doomed["runId"], "delta"), timeout=10)
    gw.signal(signal.SIGKILL)
    gw.proc.wait(10)
    restarted = gateways(home, openai_config(llm.base_url))
    async with ws_client(restarted.url, restarted.token) as client:
        history = await client.call("chat.history", {"sessionKey": "main"})
        texts = [
            m["content"] if m["role"] == "user" else m["content"][0]["text"]
            for m in history["messages"]
        ]
        assert texts[:3] == ["first question", "echo: first question", "second question"]
        # the turn the process died in is marked interrupted, under its own run id
        note = history["messages"][3]
        assert len(texts) == 4 and note["interrupted"] is True
        assert note["runId"] == doomed["runId"] and note["stopReason"] == "error"
        assert texts[3].startswith("⚠️ interrupted")
        sessions = await client.call("sessions.list", {})
        [row] = [r for r in sessions["sessions"] if r["key"] == "agent:main:main"]
        assert row["abortedLastRun"] is True
        ack = await send(client, "third")
        final = await client.wait_event(is_chat(ack["runId"], "final"), timeout=10)
        assert final["payload"]["message"]["content"][0]["text"] == "echo: third"
        sent = llm.requests[-1]["body"]["messages"]
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "user", "user"]


async def test_sessions_agents_models_methods(home, llm, gateways):
    config = openai_config(llm.base_url, "m1", "m2")
    config["agents"]["list"] = [{"id": "main"}, {"id": "ops", "model": "fake/m2"}]
    gw = gateways(home, config)
    async with ws_client(gw.url, gw.token) as client:
        for session, text in (
            ("main", "hello main"),
            ("agent:ops:main", "hello ops"),
            ("agent:main:side", "side topic"),
        ):
            ack = await send(client, text, session)
            await client.wait_event(is_chat(ack["runId"], "final"), timeout=10)
        listed = await client.call(
            "sessions.list", {"includeDerivedTitles": True, "includeLastMessage": True}
        )
        keys = {row["key"]: row for row in listed["sessions"]}
        assert set(keys) == {"agent:main:main", "agent:ops:main", "agent:main:side"}
        assert keys["agent:main:side"]["derivedTitle"] == "side topic"
        assert keys["agent:ops:main"]["lastMessagePreview"] == "echo: hello ops"
        assert keys["agent:ops:main"]["model"] == "m2"
        only_ops = await client.call("sessions.list", {"agentId": "ops"})
        assert [r["key"] for r in only_ops["sessions"]] == ["agent:ops:main"]
        preview = await client.call("sessions.preview", {"keys": ["main", "agent:main:nope"]})
        assert preview["previews"][0]["items"][0] == {"role": "user", "text": "hello main"}
        assert preview["previews"][1]["status"] == "missing"
        patched = await client.call(
            "sessions.patch", {"key": "agent:main:side", "label": "Side", "model": "fake/m2"}
        )
        assert (
            patched["entry"]["label"] == "Side" and patched["entry"]["modelOverride"] == "fake/m2"
        )
        ack = await send(client, "which model?", "agent:main:side")
        await client.wait_event(is_chat(ack["runId"], "final"), timeout=10)
        assert llm.requests[-1]["body"]["model"] == "m2"
        cleared = await client.call("sessions.patch", {"key": "agent:main:side", "label": None})
        assert "label" not in cleared["entry"]
        reset = await client.call("sessions.reset", {"key": "agent:main:side"})
        assert reset["entry"]["sessionId"] != keys["agent:main:side"]["sessionId"]
        assert (await client.call("chat.history", {"sessionKey": "agent:main:side"}))[
            "messages"
        ] == []
        deleted = await client.call("sessions.delete", {"key": "agent:main:side"})
        assert deleted["deleted"] is True
        with pytest.raises(MethodFailed, match="cannot delete the main session"):
            await client.call("sessions.delete", {"key": "main"})
        agents = await client.call("agents.list")
        assert agents["defaultId"] == "main"
        assert [a["id"] for a in agents["agents"]] == ["main", "ops"]
        assert agents["agents"][0]["identity"]["name"] == "Molty"
        models = await client.call("models.list")
        assert {m["id"] for m in models["models"]} == {"m1", "m2"}
        injected = await client.call("chat.inject", {"sessionKey": "main", "message": "note"})
        assert injected["ok"]
        before = (await client.call("chat.history", {"sessionKey": "main"}))["sessionId"]
        fresh = await send(client, "/new")
        assert fresh["reset"] and fresh["sessionId"] != before
        history = await client.call("chat.history", {"sessionKey": "main"})
        assert [m["content"][0]["text"] for m in history["messages"]] == ["Started a new session."]
        with pytest.raises(MethodFailed, match="unknown agent"):
            await send(client, "x", "agent:ghost:main")
    async with ws_client(gw.url, gw.token, scopes=["operator.read"]) as reader:
        assert (await reader.call("sessions.list"))["count"] >= 2
        with pytest.raises(MethodFailed, match="missing scope: operator.write"):
            await send(reader, "not allowed")
        with pytest.raises(MethodFailed, match="missing scope: operator.admin"):
            await reader.call("sessions.reset", {"key": "main"})


async def test_no_model_configured_reply(home, gateways):
    gw = gateways(home, {}, env={"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""})
    async with ws_client(gw.url, gw.token) as client:
        ack = await send(client, "hello?")
        final = await client.wait_event(is_chat(ack["runId"], "final"), timeout=10)
        text = final["payload"]["message"]["content"][0]["text"]
        assert "no AI model is configured" in text
        assert "moltbot --profile main onboard" in text
