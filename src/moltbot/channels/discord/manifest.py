"""The Discord channel's manifest (see :mod:`moltbot.channels.manifest`)."""

from __future__ import annotations

from moltbot.channels.manifest import Capabilities, ChannelManifest, Secret, SetupField

MANIFEST = ChannelManifest(
    id="discord",
    label="Discord",
    detail_label="Discord Bot",
    noun="bot",
    channel="moltbot.channels.discord.channel:DiscordChannel",
    config_model="moltbot.channels.discord.config:DiscordAccountConfig",
    secrets=(
        Secret(
            "token",
            "bot token",
            pattern=r"[A-Za-z0-9_\-]{20,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{20,}",
            looks_like="<id>.<timestamp>.<hmac> from the Developer Portal (Bot → Token)",
            env="DISCORD_BOT_TOKEN",
        ),
    ),
    setup=(
        SetupField(
            "token",
            "token",
            ("--token", "--bot-token"),
            "Discord bot token (Developer Portal → Bot → Token).",
            onboard=True,
            prompt="Discord bot token",
            metavar="TOKEN",
        ),
        SetupField(
            "api_root",
            "apiRoot",
            ("--api-root",),
            "REST API root (default https://discord.com/api).",
        ),
    ),
    groups_key="guilds",
    sender_hint="user ids",
    capabilities=Capabilities(
        chat_types=("direct", "channel"),
        threads=True,
        media=True,
        reactions=True,
        edits=False,
        typing=True,
        reply=True,
    ),
    order=30,
)
