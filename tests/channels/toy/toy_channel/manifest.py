"""The toy channel's manifest: everything moltbot learns about it."""

from __future__ import annotations

from moltbot.channels.manifest import Capabilities, ChannelManifest, Route, Secret, SetupField

MANIFEST = ChannelManifest(
    id="toy",
    label="Toy",
    detail_label="Toy Chat",
    noun="chat",
    channel="toy_channel.channel:ToyChannel",
    config_model="toy_channel.config:ToyAccountConfig",
    secrets=(
        Secret(
            "token", "token", pattern=r"toy-[a-z0-9]+", looks_like="toy-<letters>", env="TOY_TOKEN"
        ),
    ),
    setup=(
        SetupField("token", "token", ("--token",), "Toy token.", onboard=True, prompt="Toy token"),
    ),
    capabilities=Capabilities(chat_types=("direct",)),
    routes=(Route("/toy/events", "toy_channel.webhook:handle"),),
)
