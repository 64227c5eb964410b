"""Rescue's errors (subclasses of the one tree in :mod:`moltbot.errors`)."""

from __future__ import annotations

from moltbot.errors import AuthError, ServiceError, UsageError


class TargetRefused(UsageError):
    """The target is not granted in ``rescue.targets``, or is this instance itself."""


class NotOwner(AuthError):
    """The sender is not on ``rescue.owners`` for its channel (pairing is not enough)."""


class StartFailed(ServiceError):
    """The target did not come up: its start failed (the reason says why), or it did not
    answer ``health`` in time."""


__all__ = ["NotOwner", "StartFailed", "TargetRefused"]
