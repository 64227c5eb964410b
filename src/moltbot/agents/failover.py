"""Model fallback bookkeeping: which models are cooling down after a failure.

A model that fails with a failover-class error (429, 5xx, timeout, a broken or
malformed stream, auth) cools down for 1 min, then 5 min, 25 min, 1 h on
repeated failures; a success clears it. While cooling down it is skipped, unless
every candidate is cooling down (then they are tried in order anyway: a
cooldown must never make the assistant mute).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

STEPS = (60.0, 300.0, 1500.0, 3600.0)

T = TypeVar("T")


@dataclass
class _State:
    failures: int = 0
    until: float = 0.0
    reason: str = ""


class Cooldowns:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._states: dict[str, _State] = {}

    def cooling(self, key: str) -> float:
        """Seconds left in ``key``'s cooldown (0 when available)."""
        state = self._states.get(key)
        return max(0.0, state.until - self._clock()) if state else 0.0

    def fail(self, key: str, reason: str, retry_after: float | None = None) -> float:
        state = self._states.setdefault(key, _State())
        seconds = STEPS[min(state.failures, len(STEPS) - 1)]
        if retry_after:
            seconds = max(seconds, min(retry_after, STEPS[-1]))
        state.failures += 1
        state.until = self._clock() + seconds
        state.reason = reason
        return seconds

    def succeed(self, key: str) -> None:
        self._states.pop(key, None)

    def order(self, candidates: Sequence[T], key: Callable[[T], str]) -> list[tuple[T, bool]]:
        """Candidates to try, each with ``skipped_for_cooldown``; see the module docstring."""
        available = [c for c in candidates if not self.cooling(key(c))]
        if not available:
            return [(c, False) for c in candidates]
        return [(c, bool(self.cooling(key(c)))) for c in candidates]

    def snapshot(self) -> dict[str, dict[str, object]]:
        return {
            k: {
                "failures": s.failures,
                "cooldownSeconds": round(self.cooling(k), 1),
                "reason": s.reason,
            }
            for k, s in self._states.items()
            if self.cooling(k)
        }
