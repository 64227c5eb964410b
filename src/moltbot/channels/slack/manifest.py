"""The Slack channel's manifest (see :mod:`moltbot.channels.manifest`)."""

from __future__ import annotations

from moltbot.channels.manifest import Capabilities, ChannelManifest, Route, Secret, SetupField

MANIFEST = ChannelManifest(
    id="slack",
    label="Slack",
    detail_label="Slack App",
    noun="app",
    channel="moltbot.channels.slack.channel:SlackChannel",
    config_model="moltbot.channels.slack.config:SlackAccountConfig",
    secrets=(
        Secret(
            "botToken",
            "bot token",
            pattern=r"xoxb-\S+",
            looks_like="xoxb-... (Bot User OAuth Token)",
            env="SLACK_BOT_TOKEN",
        ),
        Secret(
            "appToken",
            "app token",
            pattern=r"xapp-\S+",
            looks_like="xapp-... (App-Level Token, Socket Mode)",
            env="SLACK_APP_TOKEN",
        ),
        Secret("signingSecret", "signing secret"),
    ),
    token_kinds=(("xoxb-", "a bot token"), ("xapp-", "an app token"), ("xoxp-", "a user token")),
    setup=(
        SetupField(
            "mode",
            "mode",
            ("--mode",),
            "Connection: socket (Socket Mode, the default) or http (Events API).",
            choices=("socket", "http"),
            onboard=True,
            prompt="Slack connection: socket = Socket Mode (app token, no public URL); "
            "http = Events API to this gateway's /slack/events (signing secret)",
        ),
        SetupField(
            "bot_token",
            "botToken",
            ("--bot-token", "--token"),
            "Slack bot token (xoxb-...).",
            onboard=True,
            prompt="Slack bot token xoxb-...",
            metavar="TOKEN",
        ),
        SetupField(
            "app_token",
            "appToken",
            ("--app-token",),
            "Slack app-level token (xapp-..., Socket Mode).",
            mode="socket",
            onboard=True,
            prompt="Slack app-level token xapp-...",
            metavar="TOKEN",
        ),
        SetupField(
            "signing_secret",
            "signingSecret",
            ("--signing-secret",),
            "Slack signing secret (HTTP Events mode).",
            mode="http",
            onboard=True,
            prompt="Slack signing secret",
            metavar="SECRET",
        ),
        SetupField(
            "api_url",
            "apiUrl",
            ("--api-url",),
            "Web API base URL (default https://slack.com/api/).",
        ),
    ),
    mode_answer="mode",
    groups_key="channels",
    sender_hint="user ids (U...)",
    capabilities=Capabilities(
        chat_types=("direct", "group", "channel"),
        threads=True,
        media=True,
        reactions=False,
        edits=False,
        typing=False,
        reply=True,
    ),
    routes=(Route("/slack/events", "moltbot.channels.slack.webhook:handle"),),
    chat_key="channelId",
    order=20,
)
