"""The channel CLI as a user runs it: real subprocesses against the stand-in platforms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.channels.channel_helpers import config_path, run_cli
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram

from moltbot.channels.pairing import PairingStore

TOKEN = "777:cli-token"


async def add_telegram(
    run_moltbot: Any, fake: FakeTelegram, *extra: str, token: str = TOKEN
) -> Any:
    """``moltbot channels add telegram`` against the stand-in Bot API."""
    return await run_cli(
        run_moltbot,
        "channels",
        "add",
        "telegram",
        "--token",
        token,
        "--api-root",
        fake.url,
        *extra,
    )


def config_of(home: Path, profile: str = "default") -> dict[str, Any]:
    return json.loads(config_path(home, profile).read_text())


async def test_add_list_status_remove_telegram(
    fake_telegram: FakeTelegram, run_moltbot: Any, home: Path
) -> None:
    fake_telegram.bot(TOKEN, username="cli_bot")
    added = await add_telegram(run_moltbot, fake_telegram, "--json")
    assert added.returncode == 0, added.stderr
    change = json.loads(added.stdout)
    assert change["action"] == "added" and change["probe"]["bot"]["username"] == "cli_bot"
    assert config_of(home)["channels"]["telegram"] == {
        "botToken": TOKEN,
        "apiRoot": fake_telegram.url,
    }

    listed = await run_cli(run_moltbot, "channels", "list", "--json")
    [row] = json.loads(listed.stdout)["accounts"]
    assert row["channel"] == "telegram" and row["accountId"] == "default"
    assert row["tokenSource"] == "config" and row["dmPolicy"] == "pairing"

    status = await run_cli(run_moltbot, "channels", "status", "--probe", "--json")
    assert status.returncode == 0, status.stderr
    payload = json.loads(status.stdout)
    assert payload["source"] == "config" and payload["channelOrder"] == ["telegram"]
    [account] = payload["channelAccounts"]["telegram"]
    assert account["state"] == "stopped" and account["probe"]["ok"] is True
    text = await run_cli(run_moltbot, "channels", "status")
    assert "Gateway not running" in text.stdout and "probe" not in text.stdout

    removed = await run_cli(run_moltbot, "channels", "remove", "telegram")
    assert removed.returncode == 0 and "telegram" not in config_of(home).get("channels", {})
    again = await run_cli(run_moltbot, "channels", "remove", "telegram")
    assert again.returncode == 9 and "not configured" in again.stderr


async def test_add_refuses_a_bad_token_and_writes_nothing(
    fake_telegram: FakeTelegram, run_moltbot: Any, home: Path
) -> None:
    result = await add_telegram(run_moltbot, fake_telegram, token="1:wrong")
    assert result.returncode == 7
    assert "refused the bot token" in result.stderr
    assert not (home / ".clawdbot" / "moltbot.json").exists() or "telegram" not in json.dumps(
        config_of(home)
    )
    missing = await run_cli(
        run_moltbot, "channels", "add", "slack", "--bot-token", "xoxb-1", "--no-probe"
    )
    assert missing.returncode == 78 and "appToken" in missing.stderr
    assert "--app-token" in missing.stderr


async def test_add_slack_accounts_and_profiles(
    fake_slack: FakeSlack, run_moltbot: Any, home: Path
) -> None:
    ws = fake_slack.workspace()
    other = fake_slack.workspace("rescue")
    first = await run_cli(
        run_moltbot,
        "channels",
        "add",
        "slack",
        "--bot-token",
        ws.bot_token,
        "--app-token",
        ws.app_token,
        "--api-url",
        fake_slack.api_url,
        "--dm-policy",
        "allowlist",
        "--allow-from",
        "U0ANN",
    )
    assert first.returncode == 0, first.stderr
    second = await run_cli(
        run_moltbot,
        "--profile",
        "rescue",
        "channels",
        "add",
        "slack",
        "--account",
        "ops",
        "--bot-token",
        other.bot_token,
        "--app-token",
        other.app_token,
        "--api-url",
        fake_slack.api_url,
    )
    assert second.returncode == 0, second.stderr
    main_cfg = config_of(home)["channels"]["slack"]
    rescue_cfg = config_of(home, "rescue")["channels"]["slack"]
    assert main_cfg["botToken"] == ws.bot_token and main_cfg["allowFrom"] == ["U0ANN"]
    assert rescue_cfg == {
        "accounts": {
            "ops": {
                "botToken": other.bot_token,
                "appToken": other.app_token,
                "apiUrl": fake_slack.api_url,
            }
        }
    }
    listed = await run_cli(run_moltbot, "--profile", "rescue", "channels", "list", "--json")
    assert [r["accountId"] for r in json.loads(listed.stdout)["accounts"]] == ["ops"]


async def test_pairing_commands(fake_telegram: FakeTelegram, run_moltbot: Any, home: Path) -> None:
    bot = fake_telegram.bot(TOKEN)
    await add_telegram(run_moltbot, fake_telegram)
    store = PairingStore(home / ".clawdbot" / "credentials", "telegram")
    first, _ = store.request("4242", {"name": "Ann", "chatId": "4242", "accountId": "default"})
    second, _ = store.request("5353", {"name": "Bob"})
    assert first and second

    listed = await run_cli(run_moltbot, "pairing", "list", "--json")
    rows = json.loads(listed.stdout)["requests"]
    assert {r["code"] for r in rows} == {first.code, second.code}
    assert all(3500 < r["expiresInSeconds"] <= 3600 for r in rows)
    text = await run_cli(run_moltbot, "pairing", "list")
    assert first.code in text.stdout and "Ann" in text.stdout

    approved = await run_cli(
        run_moltbot, "pairing", "approve", "telegram", first.code.lower(), "--notify"
    )
    assert approved.returncode == 0, approved.stderr
    assert "approved telegram sender Ann" in approved.stdout
    assert store.allowed() == ("4242",)
    [note] = await bot.wait_sent(1)
    assert note.chat_id == "4242" and "approved" in note.text

    rejected = await run_cli(run_moltbot, "pairing", "reject", "telegram", second.code)
    assert rejected.returncode == 0 and store.pending() == []
    assert store.allowed() == ("4242",)
    unknown = await run_cli(run_moltbot, "pairing", "approve", "telegram", "ZZZZ2222")
    assert unknown.returncode == 9 and "no pending telegram pairing request" in unknown.stderr


async def test_message_send_direct(
    fake_telegram: FakeTelegram, run_moltbot: Any, tmp_path: Path
) -> None:
    bot = fake_telegram.bot(TOKEN)
    await add_telegram(run_moltbot, fake_telegram)
    doc = tmp_path / "notes.txt"
    doc.write_text("notes")
    sent = await run_cli(
        run_moltbot,
        "message",
        "send",
        "--channel",
        "telegram",
        "--target",
        "4242",
        "--message",
        "**hello** from the CLI",
        "--media",
        str(doc),
        "--json",
    )
    assert sent.returncode == 0, sent.stderr
    result = json.loads(sent.stdout)
    assert result["via"] == "direct" and result["chatId"] == "4242"
    assert [s.method for s in bot.sent] == ["sendMessage", "sendDocument"]
    assert bot.sent[0].params["text"] == "<b>hello</b> from the CLI"

    refused = await run_cli(run_moltbot, "message", "send", "--target", "404", "-m", "hi")
    assert refused.returncode == 9 and "chat not found" in refused.stderr.lower()
    nothing = await run_cli(run_moltbot, "message", "send", "--target", "1")
    assert nothing.returncode == 2


def test_help_lists_the_commands(run_moltbot: Any) -> None:
    top = run_moltbot("--help")
    for name in ("channels", "pairing", "message"):
        assert name in top.stdout
    for args in (
        ("channels", "--help"),
        ("channels", "status", "--help"),
        ("pairing", "approve", "--help"),
        ("message", "send", "--help"),
    ):
        result = run_moltbot(*args)
        assert result.returncode == 0 and "Example" in result.stdout


def test_an_unknown_channel_section_is_reported_everywhere(run_moltbot: Any, home: Path) -> None:
    path = config_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"channels": {"whatsapp": {"token": "x"}}}))
    validated = run_moltbot("config", "validate", "--json")
    assert validated.returncode == 0, validated.stderr
    [warning] = json.loads(validated.stdout)["warnings"]
    assert "channels.whatsapp is not a known channel" in warning
    assert "known channels: telegram, slack, discord, matrix" in warning
    text = run_moltbot("config", "validate")
    assert "channels.whatsapp is not a known channel" in text.stderr
    status = run_moltbot("channels", "status", "--json")
    assert status.returncode == 0, status.stderr
    payload = json.loads(status.stdout)
    assert payload["channelOrder"] == ["whatsapp"]
    assert payload["channels"]["whatsapp"]["state"] == "failed"
    assert "not a known channel" in payload["channels"]["whatsapp"]["lastError"]
    listed = run_moltbot("channels", "list")
    assert "whatsapp" in listed.stdout and "not a known channel" in listed.stdout
    refused = run_moltbot("channels", "add", "whatsapp", "--token", "x")
    assert refused.returncode == 2
    assert "unsupported channel: whatsapp" in refused.stderr
    assert "known channels: telegram, slack, discord, matrix" in refused.stderr


def test_logout_without_a_gateway_removes_the_token(run_moltbot: Any, home: Path) -> None:
    path = config_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"channels": {"telegram": {"botToken": "123:ABC", "dmPolicy": "allowlist"}}})
    )
    result = run_moltbot("channels", "logout", "telegram", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["cleared"] is True and payload["clearedKeys"] == ["botToken"]
    assert json.loads(path.read_text())["channels"]["telegram"] == {"dmPolicy": "allowlist"}
    again = run_moltbot("channels", "logout", "slack")
    assert again.returncode == 2 and "slack is not configured" in again.stderr
