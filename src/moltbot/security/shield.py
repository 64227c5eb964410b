"""The defences one gateway process shares across its ports (base, +2, +4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from moltbot.security.connguard import ConnectionGuard
from moltbot.security.throttle import AuthThrottle


@dataclass
class Shield:
    """Failed-auth throttle and connection guard, created once per gateway process
    (they outlive in-process restarts, so a restart does not reset a lockout)."""

    throttle: AuthThrottle = field(default_factory=AuthThrottle)
    connections: ConnectionGuard = field(default_factory=ConnectionGuard)

    def status(self) -> dict[str, Any]:
        return {
            "unauthenticatedConnections": self.connections.unauthenticated,
            "throttledAddresses": len(self.throttle),
            "authRefusedWhileThrottled": self.throttle.refused,
            **{
                "".join(w.title() if i else w for i, w in enumerate(k.split("_"))): v
                for k, v in self.connections.stats.as_dict().items()
            },
        }
