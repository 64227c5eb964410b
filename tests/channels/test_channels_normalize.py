"""Platform payloads → InboundMessage, and the channel config models."""

from __future__ import annotations

import pytest

from moltbot.channels.config import account_ids, resolve_account
from moltbot.channels.errors import ChannelConfigError, UnsupportedMessage
from moltbot.channels.slack.config import SlackAccountConfig
from moltbot.channels.slack.normalize import clean_text, normalize_event
from moltbot.channels.telegram.config import TelegramAccountConfig
from moltbot.channels.telegram.normalize import normalize_update


def tg(message: dict, **kwargs: object) -> object:
    return normalize_update(
        {"update_id": 1, "message": message},
        account_id="default",
        bot_id="99",
        bot_username="molty_bot",
        **kwargs,
    )  # type: ignore[arg-type]


def test_telegram_private_group_and_topic() -> None:
    dm = tg(
        {
            "message_id": 5,
            "date": 1700000000,
            "text": "hi",
            "from": {
                "id": 7,
                "is_bot": False,
                "first_name": "Ann",
                "last_name": "Lee",
                "username": "ann",
            },
            "chat": {"id": 7, "type": "private"},
        }
    )
    assert (dm.chat_type, dm.chat_id, dm.sender.id, dm.sender.name) == (
        "direct",
        "7",
        "7",
        "Ann Lee",
    )
    assert dm.raw["message"]["text"] == "hi"

    text = "@molty_bot what now?"
    group = tg(
        {
            "message_id": 6,
            "date": 1,
            "text": text,
            "entities": [{"type": "mention", "offset": 0, "length": 10}],
            "from": {"id": 7, "first_name": "Ann"},
            "chat": {"id": -100, "type": "supergroup", "title": "Team"},
        }
    )
    assert group.chat_type == "group" and group.was_mentioned and group.text == "what now?"

    topic = tg(
        {
            "message_id": 8,
            "date": 1,
            "text": "in a topic",
            "message_thread_id": 42,
            "is_topic_message": True,
            "from": {"id": 7, "first_name": "Ann"},
            "chat": {"id": -100, "type": "supergroup", "is_forum": True},
        }
    )
    assert topic.thread_id == "42" and not topic.was_mentioned

    reply = tg(
        {
            "message_id": 9,
            "date": 1,
            "text": "yes",
            "reply_to_message": {
                "message_id": 3,
                "text": "shall I?",
                "from": {"id": 99, "is_bot": True, "first_name": "Molty"},
            },
            "from": {"id": 7, "first_name": "Ann"},
            "chat": {"id": -100, "type": "group"},
        }
    )
    assert reply.was_mentioned and reply.reply_to.to_bot  # type: ignore[union-attr]

    emoji = "👋🏽 @molty_bot"
    offset = len("👋🏽 ".encode("utf-16-le")) // 2
    assert tg(
        {
            "message_id": 10,
            "date": 1,
            "text": emoji,
            "entities": [{"type": "mention", "offset": offset, "length": 10}],
            "from": {"id": 7},
            "chat": {"id": -1, "type": "group"},
        }
    ).was_mentioned


def test_telegram_unsupported_updates() -> None:
    with pytest.raises(UnsupportedMessage, match="callback_query"):
        normalize_update(
            {"update_id": 1, "callback_query": {}},
            account_id="default",
            bot_id=None,
            bot_username=None,
        )
    with pytest.raises(UnsupportedMessage, match="chat type: channel"):
        tg({"message_id": 1, "text": "x", "chat": {"id": -1, "type": "channel"}})
    with pytest.raises(UnsupportedMessage, match="content"):
        tg(
            {
                "message_id": 1,
                "date": 1,
                "from": {"id": 7},
                "chat": {"id": 7, "type": "private"},
                "poll": {},
            }
        )


def test_slack_events() -> None:
    event = {
        "type": "message",
        "channel": "C1",
        "user": "U1",
        "ts": "1700000000.000100",
        "text": "<@UBOT> look at <https://e.com|this> in <#C2|ops> &amp; more",
        "channel_type": "channel",
        "thread_ts": "1699999999.000001",
    }
    message = normalize_event(event, account_id="default", bot_user_id="UBOT", bot_id="BBOT")
    assert message.chat_type == "channel" and message.was_mentioned
    assert message.text == "look at this (https://e.com) in #ops & more"
    assert message.thread_id == "1699999999.000001" and message.message_id == event["ts"]
    dm = normalize_event(
        {**event, "channel": "D1", "channel_type": "im", "thread_ts": None},
        account_id="default",
        bot_user_id="UBOT",
        bot_id=None,
    )
    assert dm.chat_type == "direct" and dm.thread_id is None
    with pytest.raises(UnsupportedMessage):
        normalize_event(
            {**event, "subtype": "message_changed"},
            account_id="default",
            bot_user_id=None,
            bot_id=None,
        )
    assert clean_text("<!here> hi <@U2|bob>", None) == "@here hi @U2"


def test_account_resolution_inherits_and_uses_env() -> None:
    section = {
        "apiRoot": "http://local/",
        "dmPolicy": "allowlist",
        "allowFrom": [42],
        "accounts": {"work": {"botToken": "2:w", "dmPolicy": "pairing"}},
    }
    assert account_ids(section) == ["work"]
    assert account_ids(section, env_token=True) == ["default", "work"]
    env = {"TELEGRAM_BOT_TOKEN": "1:env"}
    default = resolve_account(
        "telegram",
        TelegramAccountConfig,
        section,
        "default",
        env,
        {"botToken": "TELEGRAM_BOT_TOKEN"},
    )
    assert default.config.bot_token == "1:env" and default.token_source == "env:TELEGRAM_BOT_TOKEN"
    assert default.config.api_root == "http://local" and default.config.allow_from == ["42"]
    work = resolve_account(
        "telegram", TelegramAccountConfig, section, "work", env, {"botToken": "TELEGRAM_BOT_TOKEN"}
    )
    assert work.config.bot_token == "2:w" and work.token_source == "config"
    assert work.config.dm_policy == "pairing" and work.config.api_root == "http://local"
    only_named = {"accounts": {"a": {"botToken": "x"}}}
    assert account_ids(only_named) == ["a"]


def test_config_validation_names_the_key() -> None:
    with pytest.raises(ChannelConfigError, match=r"channels\.telegram\.accounts\.x\.dmPolicy"):
        resolve_account(
            "telegram",
            TelegramAccountConfig,
            {"accounts": {"x": {"dmPolicy": "sometimes"}}},
            "x",
            {},
            {},
        )
    with pytest.raises(ChannelConfigError, match=r'requires allowFrom to contain "\*"'):
        resolve_account("telegram", TelegramAccountConfig, {"dmPolicy": "open"}, "default", {}, {})


def test_slack_dm_block_alias_and_missing_keys() -> None:
    config = SlackAccountConfig.model_validate(
        {"dm": {"policy": "allowlist", "allowFrom": ["U1"]}, "mode": "http"}
    )
    assert config.dm_policy == "allowlist" and config.allow_from == ["U1"]
    assert config.missing() == ["botToken", "signingSecret"]
    assert SlackAccountConfig.model_validate({"dm": {"enabled": False}}).dm_policy == "disabled"
    assert TelegramAccountConfig.model_validate({"mode": "webhook", "botToken": "1"}).missing() == [
        "webhookUrl",
        "webhookSecret",
    ]
