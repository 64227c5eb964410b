"""Slack slash commands with the real agent runtime, over Socket Mode and HTTP: the chat
commands as native ``/status`` ..., the catch-all ``/moltbot``, answers on the
``response_url`` (ephemeral), owners only where they change state, foreign response
URLs and unknown commands refused at the acknowledgement."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.channels.channel_helpers import serving_webhooks
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Reply
from tests.fakes.slack import FakeSlack, Workspace

OWNER = "U0ANN"
GUEST = "U0EVE"


def slack(llm: FakeOpenAI, fake: FakeSlack, ws: Workspace, **account: Any) -> dict[str, Any]:
    channel = {
        "botToken": ws.bot_token,
        "appToken": ws.app_token,
        "apiUrl": fake.api_url,
        "allowFrom": [OWNER],
        "groupPolicy": "open",
        **account,
    }
    return {**openai_config(llm.base_url), "channels": {"slack": channel}}


async def slash(ws: Workspace, command: str, text: str = "", **where: Any) -> dict[str, Any]:
    """Send a slash command over Socket Mode; its answer on the response URL."""
    before = len(ws.responses)
    payload = ws.slash(command, text, **{"user": OWNER, "channel": "D0ANN", **where})
    assert await ws.push_slash(payload) is None  # acknowledged empty: the answer follows
    answers = await ws.wait_responses(before + 1)
    return answers[before]


async def test_native_slash_commands_over_socket_mode(
    fake_slack: FakeSlack, llm: FakeOpenAI, stack: Any
) -> None:
    ws = fake_slack.workspace()
    config = slack(llm, fake_slack, ws, commands={"native": True}, allowFrom=[OWNER, GUEST])
    config["commands"] = {"ownerAllowFrom": [f"slack:{OWNER}"]}
    agents, _ = await stack(config)
    await ws.wait_connected()

    status = await slash(ws, "/status")
    assert status["response_type"] == "ephemeral"
    assert "Model: fake/m1" in status["text"] and "Session: agent:main:main" in status["text"]
    think = await slash(ws, "/think", "high")
    assert think["text"] == "Think: high."
    assert (await agents.session_info("agent:main:main")).thinking == "high"
    # answered privately, a slash command in a channel is the user's own direct message:
    # a guest may look but not change anything (told so, privately); a stranger pairs
    guest = await slash(ws, "/think", "low", user=GUEST, channel="C0GEN")
    assert "only for the owners" in guest["text"]
    assert (await agents.session_info("agent:main:main")).thinking == "high"
    looked = await slash(ws, "/help", user=GUEST, channel="C0GEN")
    assert "/status" in looked["text"] and "/think" not in looked["text"]
    stranger = await slash(ws, "/status", user="U0ZED", channel="C0GEN")
    assert "Pairing code:" in stranger["text"] and stranger["response_type"] == "ephemeral"

    # nothing was posted in a conversation; the model was never asked
    assert ws.posted == [] and llm.requests == []

    # not a command of this assistant (the catch-all is off): said in the acknowledgement
    answer = await ws.push_slash(ws.slash("/moltbot", "hi", user=OWNER, channel="D0ANN"))
    assert answer["response_type"] == "ephemeral" and "not a command" in answer["text"]
    # an answer may only go to Slack (or the configured API host)
    forged = ws.slash("/status", user=OWNER, channel="D0ANN")
    forged["response_url"] = "http://127.0.0.1:9/steal"
    answer = await ws.push_slash(forged)
    assert "cannot be answered" in answer["text"]


async def test_catch_all_command_asks_the_agent_over_http(
    fake_slack: FakeSlack, llm: FakeOpenAI, stack: Any, free_port: Any, home: Path
) -> None:
    ws = fake_slack.workspace()
    config = slack(
        llm,
        fake_slack,
        ws,
        mode="http",
        signingSecret="shh",
        slashCommand={"enabled": True, "ephemeral": False},
    )
    agents, channels = await stack(config)
    port = free_port()
    url = f"http://127.0.0.1:{port}/slack/events"
    async with serving_webhooks(channels, port):
        llm.push(Reply("The tide is high."))
        form = ws.slash("/moltbot", "how is the sea?", user=OWNER, channel="D0ANN")
        status, body = await ws.post_event(url, {}, "shh", form=form)
        assert (status, body) == (200, "")
        [answer] = await ws.wait_responses(1)
        assert answer == {
            "url_id": answer["url_id"],
            "text": "The tide is high.",
            "response_type": "in_channel",
        }
        assert "how is the sea?" in str(llm.requests[-1]["body"]["messages"])
        # the session's route (heartbeats, cron, the message tool) is the user's DM, not
        # the response URL that expires in 30 minutes
        entry = await agents.store("main").get("agent:main:main")
        assert entry is not None and entry.origin is not None
        assert entry.origin.to == f"user:{OWNER}"

        # /moltbot status (or /moltbot /status) runs the chat command, not the model
        asked = len(llm.requests)
        form = ws.slash("/moltbot", "status", user=OWNER, channel="D0ANN")
        assert (await ws.post_event(url, {}, "shh", form=form))[0] == 200
        answers = await ws.wait_responses(2)
        assert "Session: agent:main:main" in answers[1]["text"]
        assert len(llm.requests) == asked

        # an empty catch-all gets its usage; a bad signature is refused as before
        status, body = await ws.post_event(
            url, {}, "shh", form=ws.slash("/moltbot", user=OWNER, channel="D0ANN")
        )
        assert status == 200 and "Usage: /moltbot" in body
        assert (await ws.post_event(url, {}, "nope", form=form))[0] == 401
        assert ws.posted == []
