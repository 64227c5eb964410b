"""Errors raised by channels, chosen by what the caller does about them.

- :class:`ChannelNotReady`: the platform is unreachable or answered with a
  transient error (network, 5xx, 429). The manager retries with backoff; a
  ``send`` answers ``UNAVAILABLE`` (retryable).
- :class:`ChannelAuthFailed`: the platform refused the credentials (bad bot
  token, revoked app token). Not retried until the config changes: fix the
  token (``moltbot channels add ...``).
- :class:`ChannelConfigError`: the channel's config section is invalid.
- :class:`UnknownChannel`: no channel of that name exists or it is not configured.
- :class:`TargetError`: the platform rejected the target or the message
  (chat not found, blocked by the user, message malformed); retrying will not help.
- :class:`UnsupportedMessage`: an inbound event kind this channel does not
  handle (raised by normalizers; the channel logs and skips it).

Third-party exceptions (python-telegram-bot, slack_sdk, aiohttp) are wrapped
into these where the library is called.
"""

from __future__ import annotations

from moltbot.errors import (
    INVALID_REQUEST,
    UNAVAILABLE,
    AuthError,
    ConfigError,
    MoltbotError,
    NotFoundError,
    UsageError,
)


class ChannelError(MoltbotError):
    """Base of every channel error: the platform refused (``INVALID_REQUEST``)."""

    protocol_code = INVALID_REQUEST


class ChannelNotReady(ChannelError):
    """Transient: retry later (``UNAVAILABLE``, retryable, ``retryAfterMs`` when known)."""

    exit_code = 6
    protocol_code = UNAVAILABLE
    retryable = True

    def __init__(
        self, message: str, *, hint: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, hint=hint, retry_after=retry_after)


class ChannelAuthFailed(ChannelError, AuthError):
    """The platform refused the credentials; needs a new token."""


class ChannelConfigError(ChannelError, ConfigError):
    """The channel's config section is invalid."""


class UnknownChannel(ChannelError, UsageError):
    """No such channel, or not configured."""


class TargetError(ChannelError, NotFoundError):
    """The platform refused the target or the message permanently."""


class UnsupportedMessage(ChannelError):
    """An inbound event kind the channel does not handle."""
