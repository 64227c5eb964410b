"""The Telegram channel's manifest (see :mod:`moltbot.channels.manifest`)."""

from __future__ import annotations

from moltbot.channels.manifest import Capabilities, ChannelManifest, Route, Secret, SetupField

MANIFEST = ChannelManifest(
    id="telegram",
    label="Telegram",
    detail_label="Telegram Bot",
    noun="bot",
    channel="moltbot.channels.telegram.channel:TelegramChannel",
    config_model="moltbot.channels.telegram.config:TelegramAccountConfig",
    secrets=(
        Secret(
            "botToken",
            "bot token",
            pattern=r"\d+:[A-Za-z0-9_-]+",
            looks_like="<digits>:<letters> from @BotFather",
            env="TELEGRAM_BOT_TOKEN",
        ),
        Secret("webhookSecret", "webhook secret"),
    ),
    token_sources=("tokenFile",),
    setup=(
        SetupField(
            "token",
            "botToken",
            ("--token",),
            "Telegram bot token (from @BotFather).",
            onboard=True,
            prompt="Telegram bot token from @BotFather",
            metavar="TOKEN",
        ),
        SetupField(
            "token_file", "tokenFile", ("--token-file",), "Read the bot token from this file."
        ),
        SetupField(
            "mode",
            "mode",
            ("--mode",),
            "polling (getUpdates) or webhook.",
            choices=("polling", "webhook"),
        ),
        SetupField(
            "webhook_url",
            "webhookUrl",
            ("--webhook-url",),
            "Webhook mode: public URL Telegram calls.",
            mode="webhook",
        ),
        SetupField(
            "webhook_secret",
            "webhookSecret",
            ("--webhook-secret",),
            "Webhook mode: secret token.",
            mode="webhook",
        ),
        SetupField(
            "api_root",
            "apiRoot",
            ("--api-root",),
            "Bot API root (default https://api.telegram.org).",
        ),
    ),
    mode_answer="mode",
    groups_key="groups",
    sender_hint="user ids or @username",
    capabilities=Capabilities(
        chat_types=("direct", "group"),
        threads=True,
        media=True,
        reactions=False,
        edits=False,
        typing=True,
        reply=True,
    ),
    routes=(Route("/telegram-webhook", "moltbot.channels.telegram.webhook:handle"),),
    order=10,
)
