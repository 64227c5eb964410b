"""System events: short notes for a session's next turn ("Cron: backup finished").

Cron jobs, ``wake``/``system-event`` and hooks queue them for an agent's main
session; the next turn of that session (a heartbeat, or the user's next message)
starts with them, one ``System: [time] text`` line each. They live in memory only
(a restart drops them, as upstream), at most :data:`MAX_EVENTS` per session (the
oldest go first), and the same text twice in a row is kept once.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

MAX_EVENTS = 20
MAX_EVENT_CHARS = 4_000


@dataclass(frozen=True)
class SystemEvent:
    text: str
    ts: int


class SystemEvents:
    def __init__(self) -> None:
        self._queues: dict[str, deque[SystemEvent]] = {}
        self._last: dict[str, str] = {}

    def enqueue(self, session_key: str, text: str) -> bool:
        """Queue ``text`` for ``session_key``; False when empty or a repeat of the last."""
        cleaned = text.strip()[:MAX_EVENT_CHARS]
        if not cleaned or self._last.get(session_key) == cleaned:
            return False
        self._last[session_key] = cleaned
        queue = self._queues.setdefault(session_key, deque(maxlen=MAX_EVENTS))
        queue.append(SystemEvent(cleaned, int(time.time() * 1000)))
        return True

    def peek(self, session_key: str) -> list[str]:
        return [event.text for event in self._queues.get(session_key, ())]

    def drain(self, session_key: str) -> list[SystemEvent]:
        self._last.pop(session_key, None)
        return list(self._queues.pop(session_key, ()))

    def restore(self, session_key: str, events: list[SystemEvent]) -> None:
        """Put drained events back in front (their turn could not be recorded)."""
        queue = self._queues.setdefault(session_key, deque(maxlen=MAX_EVENTS))
        queue.extendleft(reversed(events))

    def pending(self) -> dict[str, int]:
        return {key: len(queue) for key, queue in self._queues.items() if queue}


def with_events(events: list[SystemEvent], text: str) -> str:
    """``text`` preceded by one ``System: [YYYY-MM-DD HH:MM:SSZ] <event>`` line per event."""
    if not events:
        return text
    lines = [
        f"System: [{datetime.fromtimestamp(e.ts / 1000, UTC):%Y-%m-%d %H:%M:%SZ}] {e.text}"
        for e in events
    ]
    return "\n".join(lines) + "\n\n" + text


__all__ = ["MAX_EVENTS", "SystemEvent", "SystemEvents", "with_events"]
