"""Messaging channels: the channel contract, routing, access control, pairing,
and one sub-package per platform (``telegram/``, ``slack/``), each described by
its manifest (``<name>/manifest.py``, see :mod:`moltbot.channels.manifest`).

Importing this package imports no platform library; the registry
(:mod:`moltbot.channels.registry`) finds the manifests — built-in sub-packages
and the ``moltbot.channels`` entry points of other distributions — and imports
a channel's code only when it runs. The gateway runs them through
:class:`moltbot.channels.manager.ChannelManager` (subsystem ``channels``).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_ERRORS = {
    "ChannelAuthFailed",
    "ChannelConfigError",
    "ChannelError",
    "ChannelNotReady",
    "TargetError",
    "UnknownChannel",
    "UnsupportedMessage",
}


def __getattr__(name: str) -> Any:
    # Imported on first use: the CLI checks config sections against the registry
    # without paying for the message types.
    if name in __all__:
        import importlib

        module = "errors" if name in _ERRORS else "types"
        return getattr(importlib.import_module(f"moltbot.channels.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
