"""``wake``: a note for the agent's main session, and optionally a heartbeat now.

Used by the ``wake`` method, ``moltbot system event``, ``POST <hooks>/wake`` and
the ``system-event`` method. The text is queued as a system event of the
default agent's main session; the next turn there starts with it. ``mode:
"now"`` asks for a heartbeat at once (so the agent sees it without waiting);
``"next-heartbeat"`` leaves it for the next heartbeat or message.
"""

from __future__ import annotations

from typing import Any, Literal

from moltbot.sessions.keys import main_key

WakeMode = Literal["now", "next-heartbeat"]


def enqueue_main(agents: Any, text: str, agent_id: str | None = None) -> bool:
    """Queue ``text`` for the agent's main session; False when empty or a repeat."""
    return bool(agents.system_events.enqueue(main_key(agents.resolve_agent(agent_id)), text))


def wake(agents: Any, heartbeat: Any, text: str, mode: WakeMode, reason: str = "wake") -> bool:
    """See the module docstring; False (nothing queued) for empty text."""
    if not text.strip():
        return False
    enqueue_main(agents, text)
    if mode == "now" and heartbeat is not None:
        heartbeat.request(reason)
    return True


__all__ = ["WakeMode", "enqueue_main", "wake"]
