"""Slack against the stand-in Web API / Socket Mode / Events API, through slack_sdk."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from tests.channels.channel_helpers import (
    EchoDispatcher,
    channels_status,
    serving_webhooks,
    supervisor_ended,
    wait_for,
)
from tests.fakes.slack import FakeSlack, Workspace

from moltbot.channels.pairing import PairingStore
from moltbot.channels.types import AccountState, OutboundMessage


def slack_config(fake: FakeSlack, ws: Workspace, **extra: Any) -> dict[str, Any]:
    return {
        "channels": {
            "slack": {
                "botToken": ws.bot_token,
                "appToken": ws.app_token,
                "apiUrl": fake.api_url,
                **extra,
            }
        }
    }


async def test_socket_mode_pairing_then_dm_reaches_agent(
    fake_slack: FakeSlack, start_manager: Any, home: Path
) -> None:
    ws = fake_slack.workspace()
    agent = EchoDispatcher(reply=lambda text: f"**Hi** {text}")
    manager = await start_manager(slack_config(fake_slack, ws), dispatcher=agent)
    await ws.wait_connected()

    envelope = await ws.push_event(ws.event(channel="D0ANN", user="U0ANN", text="hello"))
    assert envelope in ws.acks
    [pairing] = await ws.wait_posted(1)
    assert pairing["channel"] == "D0ANN" and pairing["mrkdwn"] is False
    assert "Your Slack user id: U0ANN" in pairing["text"]
    code = pairing["text"].split("Pairing code: ")[1].split()[0]
    assert agent.calls == []

    PairingStore(home / ".clawdbot" / "credentials", "slack").approve(code)
    await ws.push_event(ws.event(channel="D0ANN", user="U0ANN", text="what's new?"))
    posted = await ws.wait_posted(2)
    assert posted[1]["channel"] == "D0ANN"
    assert posted[1]["text"] == "*Hi* what's new?"
    assert agent.calls[0]["session_key"] == "agent:main:main"
    assert agent.calls[0]["origin"].sender == "slack:U0ANN"
    account = channels_status(manager)["channelAccounts"]["slack"][0]
    assert account["state"] == "running" and account["connected"] is True
    assert account["mode"] == "socket" and account["bot"]["id"] == ws.bot_user_id


async def test_channel_mentions_and_threads(fake_slack: FakeSlack, start_manager: Any) -> None:
    ws = fake_slack.workspace()
    ws.users["U0ANN"] = "ann"
    agent = EchoDispatcher()
    await start_manager(slack_config(fake_slack, ws, allowFrom=["U0ANN"]), dispatcher=agent)
    await ws.wait_connected()

    await ws.push_event(
        ws.event(channel="C0GEN", user="U0ANN", text="no mention here", channel_type="channel")
    )
    await ws.push_event(
        ws.event(
            channel="C0GEN", user="U0EVE", text=f"<@{ws.bot_user_id}> hi", channel_type="channel"
        )
    )
    # push_event returns once the envelope is acknowledged, which the channel does only
    # after handling it: no pause needed, and nothing reached the agent
    assert ws.posted == [] and agent.calls == []

    mention = ws.event(
        channel="C0GEN", user="U0ANN", text=f"<@{ws.bot_user_id}> status?", channel_type="channel"
    )
    await ws.push_event(mention)
    await ws.push_event({**mention, "type": "app_mention"})  # Slack sends both
    [reply] = await ws.wait_posted(1)
    assert len(agent.calls) == 1  # both acknowledged, the duplicate never reached the agent
    assert reply["channel"] == "C0GEN" and reply.get("thread_ts") is None
    assert agent.calls[0]["session_key"] == "agent:main:slack:channel:c0gen"
    assert agent.calls[0]["text"].endswith("Ann (U0ANN): status?")
    assert "no mention here" in agent.calls[0]["text"]  # pending channel history

    threaded = ws.event(
        channel="C0GEN",
        user="U0ANN",
        text=f"<@{ws.bot_user_id}> more",
        channel_type="channel",
        thread_ts=mention["ts"],
    )
    await ws.push_event(threaded)
    posted = await ws.wait_posted(2)
    assert len(posted) == 2 and len(agent.calls) == 2
    assert posted[1]["thread_ts"] == mention["ts"]
    assert agent.calls[1]["session_key"] == f"agent:main:slack:channel:c0gen:thread:{mention['ts']}"


async def test_long_reply_is_split(fake_slack: FakeSlack, start_manager: Any) -> None:
    ws = fake_slack.workspace()
    agent = EchoDispatcher(
        reply=lambda text: "\n\n".join(f"Paragraph {i}: " + "word " * 60 for i in range(40))
    )
    await start_manager(slack_config(fake_slack, ws, allowFrom=["U0ANN"]), dispatcher=agent)
    await ws.wait_connected()
    await ws.push_event(ws.event(channel="D0ANN", user="U0ANN", text="essay"))
    await wait_for(lambda: any("Paragraph 39" in p["text"] for p in ws.posted))
    assert len(ws.posted) >= 3
    assert all(len(p["text"]) <= 4000 for p in ws.posted)
    assert sum(p["text"].count("Paragraph ") for p in ws.posted) == 40


async def test_socket_drop_and_outage_are_retried_and_reported(
    fake_slack: FakeSlack, start_manager: Any
) -> None:
    ws = fake_slack.workspace()
    agent = EchoDispatcher()
    manager = await start_manager(
        slack_config(fake_slack, ws, allowFrom=["U0ANN"]), dispatcher=agent
    )
    await ws.wait_connected()
    assert ws.connections_opened == 1

    fake_slack.fail("apps.connections.open", 503, times=1)
    await fake_slack.drop_sockets()
    await wait_for(lambda: ws.connections_opened >= 2, timeout=30)
    await ws.wait_connected()
    await ws.push_event(ws.event(channel="D0ANN", user="U0ANN", text="still there?"))
    await ws.wait_posted(1)
    account = manager.status()["channels"]["slack"][0]
    assert account["reconnectAttempts"] >= 1
    assert "disconnected" in (account["lastError"] or "")
    await wait_for(lambda: manager.status()["channels"]["slack"][0]["connected"])


async def test_connection_open_outage_at_start(fake_slack: FakeSlack, start_manager: Any) -> None:
    ws = fake_slack.workspace()
    fake_slack.fail("apps.connections.open", 500, times=4)
    manager = await start_manager(
        slack_config(fake_slack, ws, allowFrom=["U0ANN"], retry={"attempts": 1}),
        dispatcher=EchoDispatcher(),
        wait=False,
    )
    runner = manager.runner("slack")
    await wait_for(lambda: runner.status.state is AccountState.RETRYING)
    assert "HTTP 500" in (runner.status.last_error or "")
    await wait_for(lambda: runner.status.connected, timeout=15)
    assert runner.status.reconnect_attempts >= 3


async def test_refused_tokens_fail_for_good(fake_slack: FakeSlack, start_manager: Any) -> None:
    ws = fake_slack.workspace()
    manager = await start_manager(slack_config(fake_slack, ws, appToken="xapp-wrong"))
    runner = manager.runner("slack")
    await wait_for(lambda: runner.status.state is AccountState.FAILED)
    assert "refused the token: invalid_auth" in (runner.status.last_error or "")
    attempts = runner.status.reconnect_attempts
    await supervisor_ended("slack")  # barrier: nothing is left that could retry
    assert runner.status.reconnect_attempts == attempts
    assert runner.status.state is AccountState.FAILED


async def test_http_events_mode(fake_slack: FakeSlack, start_manager: Any, free_port: Any) -> None:

    ws = fake_slack.workspace()
    agent = EchoDispatcher()
    manager = await start_manager(
        {
            "channels": {
                "slack": {
                    "botToken": ws.bot_token,
                    "signingSecret": "shh",
                    "mode": "http",
                    "apiUrl": fake_slack.api_url,
                    "dm": {"policy": "allowlist", "allowFrom": ["U0ANN"]},
                }
            }
        },
        dispatcher=agent,
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}/slack/events"
    async with serving_webhooks(manager, port):
        status, body = await ws.post_event(
            url,
            {},
            "shh",
            payload={"type": "url_verification", "token": "t", "challenge": "abc123"},
        )
        assert status == 200 and json.loads(body) == {"challenge": "abc123"}
        # interactivity is refused plainly, never acknowledged as handled; a slash
        # command that is none of ours (no native commands, no catch-all) says so
        button = {"payload": json.dumps({"type": "block_actions", "actions": []})}
        status, body = await ws.post_event(url, {}, "shh", form=button)
        assert status == 501 and "not supported" in json.loads(body)["error"]
        command = ws.slash("/status", user="U0ANN", channel="D0ANN")
        status, body = await ws.post_event(url, {}, "shh", form=command)
        assert status == 200 and "not a command of this assistant" in json.loads(body)["text"]
        assert (await ws.post_event(url, {}, "shh", payload=["not", "an", "object"]))[0] == 400

        event = ws.event(channel="D0ANN", user="U0ANN", text="over http")
        assert (await ws.post_event(url, event, "wrong-secret"))[0] == 401
        assert (await ws.post_event(url, event, "shh", timestamp=int(time.time()) - 3600))[0] == 401
        assert (await ws.post_event(url, event, "shh"))[0] == 200
        [reply] = await ws.wait_posted(1)
        assert reply["text"] == "echo: over http"
        # a stranger is dropped silently under dmPolicy allowlist (answered 200 once handled)
        stranger = ws.event(channel="D0EVE", user="U0EVE", text="hi")
        assert (await ws.post_event(url, stranger, "shh"))[0] == 200
        assert [c["text"] for c in agent.calls] == ["over http"]
        # barrier: the next DM's answer comes after anything the stranger's could cause
        again = ws.event(channel="D0ANN", user="U0ANN", text="again")
        assert (await ws.post_event(url, again, "shh"))[0] == 200
        posted = await ws.wait_posted(2)
        assert [p["text"] for p in posted] == ["echo: over http", "echo: again"]


async def test_transient_api_errors_are_retried_by_the_client(
    fake_slack: FakeSlack, start_manager: Any
) -> None:
    from moltbot.channels.errors import ChannelNotReady

    ws = fake_slack.workspace()
    manager = await start_manager(slack_config(fake_slack, ws, retry={"attempts": 2}))
    await ws.wait_connected()
    fake_slack.fail("chat.postMessage", 500, times=1)
    fake_slack.fail("chat.postMessage", 429, times=1)
    # the 500 is retried after the backoff, the 429 after Retry-After: a third try is owed
    # one more failure, so attempts=2 gives up and says why
    with pytest.raises(ChannelNotReady, match="rate limit: retry after 1s"):
        await manager.send("slack", "channel:C0OPS", OutboundMessage(text="not yet"))
    fake_slack.fail("chat.postMessage", 503, times=1)
    result = await manager.send("slack", "channel:C0OPS", OutboundMessage(text="made it"))
    assert result.chat_id == "C0OPS"
    assert [p["text"] for p in ws.posted] == ["made it"]


async def test_send_to_user_with_a_file(
    fake_slack: FakeSlack, start_manager: Any, tmp_path: Path
) -> None:
    ws = fake_slack.workspace()
    manager = await start_manager(slack_config(fake_slack, ws))
    report = tmp_path / "report.txt"
    report.write_text("numbers")
    result = await manager.send(
        "slack", "user:U0ANN", OutboundMessage(text="see _attached_", media=(str(report),))
    )
    assert result.chat_id == "D0ANN"
    assert ws.posted[0]["text"] == "see _attached_"
    assert ws.uploads[0]["content"] == b"numbers" and ws.uploads[0]["channel_id"] == "D0ANN"


async def test_an_event_not_taken_is_not_acknowledged_and_comes_again(
    fake_slack: FakeSlack, start_manager: Any
) -> None:
    from tests.channels.test_channels_telegram import Restarting

    ws = fake_slack.workspace()
    ws.retry_delays = (0.2, 0.2, 0.2)
    agent = Restarting(refuse=1)
    await start_manager(slack_config(fake_slack, ws, allowFrom=["U0ANN"]), dispatcher=agent)
    await ws.wait_connected()
    acked = await ws.push_event(ws.event(channel="D0ANN", user="U0ANN", text="restarting?"))
    first, second = ws.deliveries[:2]
    assert first["envelope_id"] not in ws.acks  # refused: never acknowledged
    assert second["retry_attempt"] == 1 and acked == second["envelope_id"]
    [posted] = await ws.wait_posted(1)
    assert posted["text"] == "echo: restarting?"
    assert agent.refused == ["restarting?"]
    assert [c["text"] for c in agent.calls] == ["restarting?"]


async def test_tokens_revoked_while_running_fail_the_account_only(
    fake_slack: FakeSlack, fake_telegram: Any, start_manager: Any
) -> None:
    ws = fake_slack.workspace()
    tg = fake_telegram.bot("777:other")
    config = slack_config(fake_slack, ws, allowFrom=["U0ANN"])
    config["channels"]["telegram"] = {
        "botToken": "777:other",
        "apiRoot": fake_telegram.url,
        "pollTimeoutSeconds": 1,
        "allowFrom": ["4242"],
    }
    manager = await start_manager(config, dispatcher=EchoDispatcher())
    await ws.wait_connected()
    # the app is uninstalled: both tokens stop working, the socket goes
    ws.bot_token, ws.app_token = "xoxb-revoked", "xapp-revoked"
    await fake_slack.drop_sockets()
    runner = manager.runner("slack")
    await wait_for(lambda: runner.status.state is AccountState.FAILED, timeout=30)
    assert "invalid_auth" in (runner.status.last_error or "")
    assert runner.status.reconnect_attempts == 1  # the drop; no restart was needed to see it
    await supervisor_ended("slack")  # backs off for good: nothing left that retries
    opened = ws.connections_opened
    assert manager.state.value == "running"
    await tg.push_dm(4242, "still here?")
    [answer] = await tg.wait_sent(1)  # the other channel keeps serving
    assert answer.text == "echo: still here?"
    assert ws.connections_opened == opened
