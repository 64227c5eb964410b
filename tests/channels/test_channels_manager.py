"""The ChannelManager subsystem: live reconfiguration, broken sections, status shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.channels.channel_helpers import (
    EchoDispatcher,
    channels_status,
    load_instance,
    write_config,
)
from tests.fakes.slack import FakeSlack
from tests.fakes.telegram import FakeTelegram

from moltbot.channels.types import AccountState


async def test_reconfigure_restarts_only_what_changed(
    fake_telegram: FakeTelegram, start_manager: Any, home: Path
) -> None:
    fake_telegram.bot("1:a", username="a_bot")
    work = fake_telegram.bot("2:b", username="b_bot")
    fake_telegram.bot("3:c", username="c_bot")
    base = {"apiRoot": fake_telegram.url, "pollTimeoutSeconds": 1}
    manager = await start_manager(
        {"channels": {"telegram": {**base, "botToken": "1:a"}}}, dispatcher=EchoDispatcher()
    )
    default = manager.runner("telegram")
    assert default.status.bot_username == "a_bot"

    write_config(
        home,
        "default",
        {
            "channels": {
                "telegram": {**base, "botToken": "1:a", "accounts": {"work": {"botToken": "2:b"}}}
            }
        },
    )
    _, config = load_instance(home)
    assert await manager.reconfigure(config) is True
    await manager.wait_running(10)
    assert manager.runner("telegram") is default and default.status.restarts == 0
    assert manager.runner("telegram", "work").status.bot_username == "b_bot"
    await work.wait_polling()

    write_config(home, "default", {"channels": {"telegram": {**base, "botToken": "3:c"}}})
    _, config = load_instance(home)
    await manager.reconfigure(config)
    await manager.wait_running(10)
    replaced = manager.runner("telegram")
    assert replaced is not default and replaced.status.bot_username == "c_bot"
    assert default.status.state is AccountState.STOPPED
    assert [key for key in manager.runners] == [("telegram", "default")]


async def test_a_broken_section_does_not_stop_the_others(
    fake_slack: FakeSlack, start_manager: Any
) -> None:
    ws = fake_slack.workspace()
    manager = await start_manager(
        {
            "channels": {
                "telegram": {"botToken": "1:x", "dmPolicy": "sometimes"},
                "slack": {
                    "botToken": ws.bot_token,
                    "appToken": ws.app_token,
                    "apiUrl": fake_slack.api_url,
                },
            }
        },
        dispatcher=EchoDispatcher(),
    )
    await ws.wait_connected()
    status = channels_status(manager)
    assert status["channelOrder"] == ["slack", "telegram"]
    assert "dmPolicy" in status["channels"]["telegram"]["lastError"]
    assert status["channels"]["telegram"]["state"] == "failed"
    assert status["channels"]["slack"]["state"] == "running"
    assert manager.state.value == "running"


async def test_unconfigured_and_disabled_accounts(start_manager: Any) -> None:
    manager = await start_manager(
        {
            "channels": {
                "slack": {"botToken": "xoxb-1"},
                "telegram": {"botToken": "1:x", "enabled": False},
            }
        }
    )
    status = channels_status(manager)
    [slack] = status["channelAccounts"]["slack"]
    assert slack["state"] == "failed" and slack["configured"] is False
    assert "missing appToken" in slack["lastError"]
    assert "telegram" not in status["channelAccounts"]


async def test_env_token_alone_configures_telegram(
    fake_telegram: FakeTelegram, start_manager: Any
) -> None:
    fake_telegram.bot("4:env", username="env_bot")
    manager = await start_manager(
        {"channels": {"telegram": {"apiRoot": fake_telegram.url}}},
        env={"TELEGRAM_BOT_TOKEN": "4:env"},
    )
    runner = manager.runner("telegram")
    assert runner.status.token_source == "env:TELEGRAM_BOT_TOKEN"
    assert runner.status.bot_username == "env_bot"


def test_public_surface_is_pinned_and_light() -> None:
    import subprocess
    import sys

    import moltbot.channels as channels

    assert sorted(channels.__all__) == [
        "AccountState",
        "AccountStatus",
        "ChannelAuthFailed",
        "ChannelConfigError",
        "ChannelError",
        "ChannelNotReady",
        "InboundMessage",
        "Media",
        "OutboundMessage",
        "ReplyContext",
        "SendResult",
        "Sender",
        "TargetError",
        "UnknownChannel",
        "UnsupportedMessage",
    ]
    probe = (
        "import sys, moltbot.channels, moltbot.channels.manager, moltbot.cli.main; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('telegram', 'slack_sdk', 'httpx')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"


def test_webhook_routes_come_from_the_manifests_and_install_once() -> None:
    from aiohttp import web

    from moltbot.channels import webhook

    app = web.Application()
    webhook.setup_routes(app, object())
    webhook.setup_routes(app, object())
    paths = sorted(r.resource.canonical for r in app.router.routes())  # type: ignore[union-attr]
    assert paths == [
        "/slack/events",
        "/slack/events/{account}",
        "/telegram-webhook",
        "/telegram-webhook/{account}",
    ]


async def test_unknown_sections_are_reported_not_silently_ignored(
    fake_telegram: FakeTelegram, start_manager: Any, caplog: Any
) -> None:
    fake_telegram.bot("5:ok", username="ok_bot")
    manager = await start_manager(
        {
            "channels": {
                "whatsapp": {"enabled": True},
                "telegram": {"botToken": "5:ok", "apiRoot": fake_telegram.url},
            }
        }
    )
    status = channels_status(manager)
    assert status["channelOrder"] == ["telegram", "whatsapp"]
    whatsapp = status["channels"]["whatsapp"]
    assert whatsapp["state"] == "failed"
    assert "not a known channel" in whatsapp["lastError"]
    assert "known channels: telegram, slack, discord, matrix" in whatsapp["lastError"]
    assert status["channelLabels"]["whatsapp"] == "whatsapp"
    assert status["channels"]["telegram"]["state"] == "running"
    assert any("channels.whatsapp is not a known channel" in r.message for r in caplog.records)
    assert manager.default_channel() == "telegram"  # the unknown section does not count
