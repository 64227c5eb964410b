"""The Matrix channel's manifest (see :mod:`moltbot.channels.manifest`)."""

from __future__ import annotations

from moltbot.channels.manifest import Capabilities, ChannelManifest, Secret, SetupField

MANIFEST = ChannelManifest(
    id="matrix",
    label="Matrix",
    detail_label="Matrix Bot",
    noun="account",
    channel="moltbot.channels.matrix.channel:MatrixChannel",
    config_model="moltbot.channels.matrix.config:MatrixAccountConfig",
    secrets=(
        Secret("accessToken", "access token", env="MATRIX_ACCESS_TOKEN"),
        Secret("password", "password", env="MATRIX_PASSWORD"),
    ),
    token_sources=("homeserver",),
    setup=(
        SetupField(
            "homeserver",
            "homeserver",
            ("--homeserver",),
            "Homeserver URL, e.g. https://matrix.example.org.",
            onboard=True,
            prompt="Matrix homeserver URL",
            metavar="URL",
        ),
        SetupField(
            "user_id",
            "userId",
            ("--user-id",),
            "The bot's Matrix user id (@bot:example.org).",
            onboard=True,
            prompt="Matrix user id of the bot (@bot:example.org)",
            metavar="MXID",
        ),
        SetupField(
            "access_token",
            "accessToken",
            ("--access-token",),
            "Access token (instead of a password).",
            onboard=True,
            metavar="TOKEN",
        ),
        SetupField(
            "password",
            "password",
            ("--password",),
            "Password: the gateway logs in and keeps the access token in its state dir.",
            onboard=True,
            prompt="Matrix password of the bot",
            metavar="PASSWORD",
        ),
        SetupField("device_name", "deviceName", ("--device-name",), "Device display name."),
        SetupField(
            "encryption",
            "encryption",
            ("--encryption",),
            "End-to-end encryption: on or off.",
            choices=("on", "off"),
        ),
    ),
    groups_key="groups",
    sender_hint="user ids (@user:example.org)",
    capabilities=Capabilities(
        chat_types=("direct", "group"),
        threads=True,
        media=True,
        reactions=False,
        edits=True,
        typing=True,
        reply=True,
    ),
    chat_key="roomId",
    order=40,
)
