"""Channels in a real gateway subprocess: stand-in Telegram/Slack and LLM, the real CLI."""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.channels.channel_helpers import run_cli
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Reply
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram

from gateway_harness import MethodFailed, start_gateway, ws_client

NO_EXTRAS = {"CLAWDBOT_SKIP_BROWSER_CONTROL_SERVER": "1", "CLAWDBOT_SKIP_CANVAS_HOST": "1"}


@pytest.fixture
async def llm() -> Any:
    async with FakeOpenAI(api_key="sk-test") as server:
        yield server


@pytest.fixture
def gateways() -> Any:
    started: list[Any] = []

    async def launch(home: Path, profile: str, config: dict[str, Any]) -> Any:
        state = home / f".clawdbot-{profile}"
        state.mkdir(parents=True, exist_ok=True)
        data = {
            "gateway": {"mode": "local", "auth": {"token": secrets.token_urlsafe(24)}},
            **config,
        }
        data.setdefault("agents", {}).setdefault("defaults", {})["workspace"] = str(
            home / f"clawd-{profile}"
        )
        (state / "moltbot.json").write_text(json.dumps(data, indent=2))
        gw = await asyncio.to_thread(start_gateway, home, profile, env=NO_EXTRAS)
        started.append(gw)
        return gw

    yield launch
    for gw in started:
        gw.stop()


async def test_telegram_through_the_gateway(
    home: Path, llm: FakeOpenAI, fake_telegram: FakeTelegram, gateways: Any, run_moltbot: Any
) -> None:
    bot = fake_telegram.bot("900:gateway-token")
    gw = await gateways(
        home,
        "main",
        {
            **openai_config(llm.base_url),
            "channels": {
                "telegram": {
                    "botToken": "900:gateway-token",
                    "apiRoot": fake_telegram.url,
                    "pollTimeoutSeconds": 1,
                }
            },
        },
    )
    await bot.wait_polling(20)

    await bot.push_dm(4242, "hello?")
    [pairing] = await bot.wait_sent(1, timeout=30)
    code = pairing.text.split("Pairing code: ")[1].split()[0]
    assert f"moltbot --profile main pairing approve telegram {code}" in pairing.text
    listed = await run_cli(run_moltbot, "--profile", "main", "pairing", "list", "--json")
    assert [r["code"] for r in json.loads(listed.stdout)["requests"]] == [code]
    approved = await run_cli(
        run_moltbot, "--profile", "main", "pairing", "approve", "telegram", code
    )
    assert approved.returncode == 0, approved.stderr

    llm.push(Reply("Hi **Ann**, all good."))
    await bot.push_dm(4242, "status report")
    sent = await bot.wait_sent(2, timeout=30)
    assert sent[1].params["text"] == "Hi <b>Ann</b>, all good."

    status = await run_cli(run_moltbot, "--profile", "main", "channels", "status", "--json")
    payload = json.loads(status.stdout)
    assert payload["source"] == "gateway"
    [account] = payload["channelAccounts"]["telegram"]
    assert account["state"] == "running" and account["connected"] is True

    via_cli = await run_cli(
        run_moltbot,
        "--profile",
        "main",
        "message",
        "send",
        "--channel",
        "telegram",
        "--target",
        "4242",
        "-m",
        "from the CLI",
        "--json",
    )
    assert via_cli.returncode == 0, via_cli.stderr
    assert json.loads(via_cli.stdout)["via"] == "gateway"
    await bot.wait_sent(3, timeout=30)

    async with ws_client(gw.url, gw.token) as client:
        key = str(uuid.uuid4())
        params = {
            "to": "4242",
            "message": "once only",
            "idempotencyKey": key,
            "channel": "telegram",
        }
        first, second = await asyncio.gather(
            client.call("send", params), client.call("send", params)
        )
        third = await client.call("send", params)
        assert first == second == third and first["chatId"] == "4242"
        assert [s.text for s in bot.sent].count("once only") == 1
        with pytest.raises(MethodFailed) as refused:
            await client.call(
                "send",
                {
                    "to": "4242",
                    "message": "x",
                    "channel": "carrier",
                    "idempotencyKey": str(uuid.uuid4()),
                },
            )
        assert "unsupported channel" in str(refused.value)
        health = await client.call("health", {"probe": True})
        assert health["channels"]["telegram"]["state"] == "running"
        status = await client.call("channels.status", {"probe": True})
        assert status["channelAccounts"]["telegram"][0]["probe"]["ok"] is True


async def test_two_gateways_same_channel_type_never_cross(
    home: Path, llm: FakeOpenAI, fake_telegram: FakeTelegram, gateways: Any
) -> None:
    main_bot = fake_telegram.bot("901:main", username="main_bot")
    rescue_bot = fake_telegram.bot("902:rescue", username="rescue_bot")
    common = {"apiRoot": fake_telegram.url, "pollTimeoutSeconds": 1, "allowFrom": ["4242"]}
    await gateways(
        home,
        "main",
        {
            **openai_config(llm.base_url),
            "channels": {"telegram": {**common, "botToken": "901:main"}},
        },
    )
    await gateways(
        home,
        "rescue",
        {
            **openai_config(llm.base_url),
            "channels": {"telegram": {**common, "botToken": "902:rescue"}},
        },
    )
    await main_bot.wait_polling(20)
    await rescue_bot.wait_polling(20)
    await main_bot.push_dm(4242, "for main")
    await rescue_bot.push_dm(4242, "for rescue")
    [main_reply] = await main_bot.wait_sent(1, timeout=30)
    [rescue_reply] = await rescue_bot.wait_sent(1, timeout=30)
    assert main_reply.text == "echo: for main"
    assert rescue_reply.text == "echo: for rescue"
    # barrier: a second message each, answered after anything the first could still cause
    await main_bot.push_dm(4242, "main again")
    await rescue_bot.push_dm(4242, "rescue again")
    main_sent = await main_bot.wait_sent(2, timeout=30)
    rescue_sent = await rescue_bot.wait_sent(2, timeout=30)
    assert [s.text for s in main_sent] == ["echo: for main", "echo: main again"]
    assert [s.text for s in rescue_sent] == ["echo: for rescue", "echo: rescue again"]
    for profile, text in (("main", "for main"), ("rescue", "for rescue")):
        sessions = home / f".clawdbot-{profile}" / "agents" / "main" / "sessions"
        transcripts = "".join(p.read_text() for p in sessions.glob("*.jsonl"))
        assert text in transcripts
        other = "for rescue" if profile == "main" else "for main"
        assert other not in transcripts


async def test_slack_http_events_on_the_gateway_port(
    home: Path, llm: FakeOpenAI, fake_slack: FakeSlack, gateways: Any
) -> None:
    ws = fake_slack.workspace()
    gw = await gateways(
        home,
        "main",
        {
            **openai_config(llm.base_url),
            "channels": {
                "slack": {
                    "mode": "http",
                    "botToken": ws.bot_token,
                    "signingSecret": "sign-me",
                    "apiUrl": fake_slack.api_url,
                    "allowFrom": ["U0ANN"],
                }
            },
        },
    )
    url = f"{gw.http}/slack/events"

    async def running() -> None:
        async with ws_client(gw.url, gw.token) as client:
            for _ in range(300):
                status = await client.call("channels.status")
                accounts = status["channelAccounts"].get("slack") or [{}]
                if accounts[0].get("state") == "running":
                    return
                await asyncio.sleep(0.1)
        raise TimeoutError("slack account did not start")

    await running()
    status, body = await ws.post_event(
        url, {}, "sign-me", payload={"type": "url_verification", "challenge": "c-123", "token": "t"}
    )
    assert status == 200 and json.loads(body)["challenge"] == "c-123"
    assert (
        await ws.post_event(url, ws.event(channel="D0ANN", user="U0ANN", text="hi"), "bad-secret")
    )[0] == 401
    llm.push(Reply("Sure — _on it_."))
    event = ws.event(
        channel="C0OPS",
        user="U0ANN",
        channel_type="channel",
        text=f"<@{ws.bot_user_id}> can you check?",
    )
    assert (await ws.post_event(url, event, "sign-me"))[0] == 200
    [reply] = await ws.wait_posted(1, timeout=30)
    assert reply["channel"] == "C0OPS" and reply["text"] == "Sure — _on it_."


async def test_channels_add_on_a_running_gateway(
    home: Path,
    llm: FakeOpenAI,
    fake_telegram: FakeTelegram,
    fake_slack: FakeSlack,
    gateways: Any,
    run_moltbot: Any,
) -> None:
    """A new user's path: gateway up first, then `channels add`; the bot answers at once."""
    bot = fake_telegram.bot("903:added-later", username="later_bot")
    ws = fake_slack.workspace()
    gw = await gateways(home, "main", openai_config(llm.base_url))
    added = await run_cli(
        run_moltbot,
        "--profile",
        "main",
        "channels",
        "add",
        "telegram",
        "--token",
        "903:added-later",
        "--api-root",
        fake_telegram.url,
    )
    assert added.returncode == 0, added.stderr
    assert "(@later_bot)" in added.stdout
    await bot.wait_polling(20)
    await bot.push_dm(31337, "anyone home?", first_name="Stranger", username=None)
    [pairing] = await bot.wait_sent(1, timeout=30)
    code = pairing.text.split("Pairing code: ")[1].split()[0]
    assert llm.requests == []  # strangers never reach the agent

    added = await run_cli(
        run_moltbot,
        "--profile",
        "main",
        "channels",
        "add",
        "slack",
        "--bot-token",
        ws.bot_token,
        "--app-token",
        ws.app_token,
        "--api-url",
        fake_slack.api_url,
    )
    assert added.returncode == 0, added.stderr
    await ws.wait_connected(20)
    approved = await run_cli(
        run_moltbot, "--profile", "main", "pairing", "approve", "telegram", code, "--notify"
    )
    assert approved.returncode == 0, approved.stderr
    [_, notice] = await bot.wait_sent(2, timeout=30)  # the approval notice, through the gateway
    assert "access approved" in notice.text
    await bot.push_dm(31337, "now?", first_name="Stranger", username=None)
    sent = await bot.wait_sent(3, timeout=30)
    assert sent[2].text == "echo: now?"
    async with ws_client(gw.url, gw.token) as client:
        status = await client.call("channels.status")
    assert status["channelOrder"] == ["telegram", "slack"]
    assert all(
        a["state"] == "running"
        for name in status["channelOrder"]
        for a in status["channelAccounts"][name]
    )


async def test_discord_logout_and_probe_through_the_gateway(
    home: Path, fake_discord: Any, gateways: Any, run_moltbot: Any
) -> None:
    from tests.channels.test_channels_discord import TOKEN

    bot = fake_discord.bot(TOKEN)
    gw = await gateways(
        home,
        "main",
        {"channels": {"discord": {"token": TOKEN, "apiRoot": fake_discord.api_root}}},
    )
    await bot.wait_ready(timeout=30)
    probed = await run_cli(
        run_moltbot, "--profile", "main", "channels", "status", "--probe", "--json"
    )
    assert probed.returncode == 0, probed.stderr
    [account] = json.loads(probed.stdout)["channelAccounts"]["discord"]
    assert account["probe"] == {"ok": True, "bot": {"id": bot.id, "username": "moltbot"}}
    out = await run_cli(run_moltbot, "--profile", "main", "channels", "logout", "discord", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["cleared"] is True and result["clearedKeys"] == ["token"]
    config = json.loads((gw.state_dir / "moltbot.json").read_text())
    assert "token" not in config["channels"]["discord"]
    async with ws_client(gw.url, gw.token) as client:
        for _ in range(100):  # the config reload leaves the account unconfigured
            status = await client.call("channels.status", {})
            [account] = status["channelAccounts"]["discord"]
            if account["configured"] is False:
                break
            await asyncio.sleep(0.1)
        assert account["configured"] is False and account["running"] is False
        with pytest.raises(MethodFailed, match="not configured|unsupported"):
            await client.call("channels.logout", {"channel": "whatsapp"})
