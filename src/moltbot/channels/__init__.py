"""Messaging channels: the channel contract, routing, access control, pairing,
and one sub-package per platform (``telegram/``, ``slack/``).

Importing this package imports no platform library; channels are loaded
through :data:`moltbot.channels.registry.CHANNELS` when configured. The gateway
runs them through :class:`moltbot.channels.manager.ChannelManager` (subsystem
``channels``).
"""

from moltbot.channels.errors import (
    ChannelAuthFailed,
    ChannelConfigError,
    ChannelError,
    ChannelNotReady,
    TargetError,
    UnknownChannel,
    UnsupportedMessage,
)
from moltbot.channels.types import (
    AccountState,
    AccountStatus,
    InboundMessage,
    Media,
    OutboundMessage,
    ReplyContext,
    Sender,
    SendResult,
)

__all__ = [
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
