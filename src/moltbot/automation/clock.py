"""The time source of the scheduler and the heartbeat: wall-clock milliseconds and a
sleep that a wake-up (a job added, a heartbeat requested) cuts short.

:class:`SystemClock` is the real one. :class:`ManualClock` only moves when told
(:meth:`ManualClock.advance`), so tests and benchmarks drive schedules across
days and DST changes without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol

MAX_SLEEP_MS = 60_000
"""The longest real sleep: a wall clock that jumps (NTP, suspend) is noticed within it."""


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock time, milliseconds since the epoch (UTC)."""
        ...

    async def sleep_until(self, deadline_ms: int | None, wake: asyncio.Event) -> None:
        """Return at ``deadline_ms`` (``None``: never), or earlier once ``wake`` is set.

        May also return early for no reason (callers re-check the time)."""
        ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep_until(self, deadline_ms: int | None, wake: asyncio.Event) -> None:
        delay = MAX_SLEEP_MS if deadline_ms is None else deadline_ms - self.now_ms()
        if delay <= 0:
            await asyncio.sleep(0)  # always yield: a caller's loop never starves the others
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), min(delay, MAX_SLEEP_MS) / 1000)


class ManualClock:
    """A clock that stands still until :meth:`advance` or :meth:`set` moves it."""

    def __init__(self, start_ms: int) -> None:
        self._now = start_ms
        self._moved = asyncio.Event()

    def now_ms(self) -> int:
        return self._now

    def set(self, now_ms: int) -> None:
        if now_ms < self._now:
            raise ValueError("a manual clock only moves forward")
        self._now = now_ms
        self._moved.set()
        self._moved = asyncio.Event()

    def advance(self, ms: int) -> None:
        self.set(self._now + ms)

    async def sleep_until(self, deadline_ms: int | None, wake: asyncio.Event) -> None:
        """Returns at once when due or woken, else at the clock's next move (so a
        caller that records the time it saw always sees the latest)."""
        if wake.is_set() or (deadline_ms is not None and self._now >= deadline_ms):
            await asyncio.sleep(0)
            return
        moved = asyncio.ensure_future(self._moved.wait())
        woken = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({moved, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            moved.cancel()
            woken.cancel()


__all__ = ["MAX_SLEEP_MS", "Clock", "ManualClock", "SystemClock"]
