"""The defences one gateway process shares across its ports (base, +2, +4)."""

from __future__ import annotations

from dataclasses import dataclass, field

from moltbot.security.connguard import ConnectionGuard
from moltbot.security.throttle import AuthThrottle


@dataclass
class Shield:
    """Failed-auth throttle and connection guard, created once per gateway process
    (they outlive in-process restarts, so a restart does not reset a lockout)."""

    throttle: AuthThrottle = field(default_factory=AuthThrottle)
    connections: ConnectionGuard = field(default_factory=ConnectionGuard)
