"""Confirmations: every change waits for its asker to say yes.

A front-end that is asked for a change (restore, set, restart, stop, start) first
gets a :class:`Pending` with a short code and an expiry (``rescue.confirmSeconds``).
The same asker (:attr:`Actor.key`: one chat sender in one conversation, one protocol
device) confirms with ``yes`` or the code before it expires; anyone else, another
conversation or a late answer confirms nothing. One pending change per asker: a new
request replaces the previous one. Kept in memory by the rescue subsystem; a gateway
restart forgets them (ask again).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moltbot.rescue.operations import Change

YES = frozenset({"yes", "y"})
MAX_PENDING = 256


@dataclass(frozen=True)
class Pending:
    code: str
    actor_key: str
    change: Change
    expires_at: float
    """On the store's clock (monotonic)."""


class Confirmations:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._pending: dict[str, Pending] = {}
        self._lock = threading.RLock()  # used from the event loop and worker threads

    def ask(self, actor_key: str, change: Change) -> Pending:
        """Register ``change`` for ``actor_key`` (replacing its earlier one)."""
        with self._lock:
            self._sweep()
            self._pending.pop(actor_key, None)
            while len(self._pending) >= MAX_PENDING:
                self._pending.pop(next(iter(self._pending)))
            code = f"{secrets.randbelow(900_000) + 100_000}"
            pending = Pending(code, actor_key, change, self.clock() + self.ttl)
            self._pending[actor_key] = pending
            return pending

    def waiting(self, actor_key: str) -> Pending | None:
        """The unexpired change waiting for ``actor_key``'s answer."""
        with self._lock:
            self._sweep()
            return self._pending.get(actor_key)

    def take(self, actor_key: str, answer: str) -> Pending | None:
        """The pending change of ``actor_key`` when ``answer`` confirms it (``yes``, ``y``
        or its code; case and surrounding space ignored); it is removed. ``None`` when
        nothing is waiting or the answer is something else."""
        with self._lock:
            pending = self.waiting(actor_key)
            word = answer.strip().lower()
            if pending is None or (word not in YES and word != pending.code):
                return None
            del self._pending[actor_key]
            return pending

    def cancel(self, actor_key: str) -> Pending | None:
        with self._lock:
            return self._pending.pop(actor_key, None)

    def _sweep(self) -> None:
        now = self.clock()
        for key in [k for k, p in self._pending.items() if p.expires_at <= now]:
            del self._pending[key]


__all__ = ["YES", "Confirmations", "Pending"]
