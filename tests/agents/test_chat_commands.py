"""Chat commands typed in WebChat (``chat.send``) against a gateway subprocess: answered
before any model, as a ``chat`` final of the sending run; a plugin distribution's
command works without any change to moltbot."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from tests.agents.gateway_agents import is_chat, start
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Reply

from gateway_harness import ws_client

PLUGIN = Path(__file__).resolve().parents[1] / "commands" / "plugin"


async def command(client: Any, text: str, session: str = "main") -> tuple[dict[str, Any], str]:
    """Send ``text``; the ack and the reply text of its ``chat`` final."""
    idem = str(uuid.uuid4())
    ack = await client.call(
        "chat.send", {"sessionKey": session, "message": text, "idempotencyKey": idem}
    )
    final = await client.wait_event(is_chat(idem, "final"), timeout=10)
    return ack, final["payload"]["message"]["content"][0]["text"]


async def test_webchat_commands(home: Path, llm: FakeOpenAI) -> None:
    config = openai_config(llm.base_url, "m1", "m2")
    gw = start(home, config, env={"PYTHONPATH": str(PLUGIN)})
    try:
        async with ws_client(gw.url, gw.token) as client:
            ack, text = await command(client, "/status")
            assert ack["status"] == "ok" and ack["command"] == "status" and ack["reply"] == text
            assert "Model: fake/m1" in text and "Fallbacks" not in text
            _, text = await command(client, "/help")
            assert "/compact" in text and "/pingtest" in text
            _, text = await command(client, "/whoami")
            assert text.startswith("You are webchat:") and ", owner." in text
            _, text = await command(client, "/model")
            assert "1) fake/m1" in text and "2) fake/m2" in text
            _, text = await command(client, "/model 2")
            assert text == "Model: fake/m2 for this session."
            _, text = await command(client, "/think: medium")
            assert text == "Think: medium."
            _, text = await command(client, "/verbose on")
            assert text == "Verbose: on."
            _, text = await command(client, "/pingtest hi")
            assert text == "pong hi (webchat, owner, agent:main:main)"
            _, text = await command(client, "/rescuetest db")
            assert text == "rescued db"
            _, text = await command(client, "/compact")
            assert text.startswith("Nothing to compact")
            # the model never saw a command; the next message goes to the chosen model
            idem = str(uuid.uuid4())
            await client.call(
                "chat.send", {"sessionKey": "main", "message": "hi", "idempotencyKey": idem}
            )
            await client.wait_event(is_chat(idem, "final"), timeout=10)
            assert len(llm.requests) == 1 and llm.requests[0]["body"]["model"] == "m2"
            assert "/status" not in json.dumps(llm.requests[0]["body"]["messages"])
            history = await client.call("chat.history", {"sessionKey": "main"})
            texts = [
                m["content"] if m["role"] == "user" else m["content"][0]["text"]
                for m in history["messages"]
            ]
            assert texts[:2] == ["/status", ack["reply"]]
            row = (await client.call("sessions.list"))["sessions"][0]
            assert row["thinkingLevel"] == "medium" and row["modelOverride"] == "fake/m2"
            # /new: a fresh transcript holding only its note
            ack, text = await command(client, "/new")
            assert ack["reset"] and text == "Started a new session."
            history = await client.call("chat.history", {"sessionKey": "main"})
            assert [m["content"][0]["text"] for m in history["messages"]] == [text]
            ack, text = await command(client, "/reset")
            assert ack["reset"] and ack["sessionId"] and text == "Started a new session."
            # /stop while a reply streams
            llm.push(Reply("word " * 300, chunk_chars=5, chunk_delay=0.03))
            idem = str(uuid.uuid4())
            await client.call(
                "chat.send", {"sessionKey": "main", "message": "talk", "idempotencyKey": idem}
            )
            await client.wait_event(is_chat(idem, "delta"), timeout=10)
            ack, text = await command(client, "stop!")
            assert ack["aborted"] and ack["runIds"] == [idem] and text == "⏹ Stopped."
            await client.wait_event(is_chat(idem, "aborted"), timeout=10)
    finally:
        gw.stop()
