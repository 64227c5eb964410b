"""Where automated replies go, and sending them there through the channel manager.

A target is ``channel`` + ``to``:

- ``channel: "last"`` (or unset) is the chat the agent last talked in: the
  ``lastChannel``/``lastTo`` recorded on its main session by every direct
  message. An explicit ``to`` with ``last`` keeps that channel (or the only
  configured one when the agent has not talked anywhere yet);
- a channel id (``telegram``) with ``to``; without ``to``, the last chat when it
  was on that channel;
- ``"none"``: nowhere.

A target that cannot be resolved carries the ``reason`` (``no-last-route``,
``no-recipient``, ``target-none``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from moltbot.sessions.keys import main_key

READY_WAIT_S = 30.0
RETRY_S = 1.0


@dataclass(frozen=True)
class Target:
    channel: str | None
    to: str | None
    account_id: str | None = None
    thread_id: str | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.channel and self.to)


async def resolve_target(
    agents: Any,
    channels: Any,
    agent_id: str,
    channel: str | None,
    to: str | None,
    account_id: str | None = None,
) -> Target:
    requested = (channel or "last").strip().lower()
    if requested == "none":
        return Target(None, None, reason="target-none")
    to = (to or "").strip() or None
    entry = await agents.store(agent_id).get(main_key(agent_id))
    last_channel = entry.last_channel if entry is not None else None
    last_to = entry.last_to if entry is not None else None
    last_account = entry.last_account_id if entry is not None else None
    last_thread = entry.last_thread_id if entry is not None else None
    if requested == "last":
        if last_channel is None:
            if to is None:
                return Target(None, None, reason="no-last-route")
            try:
                chosen = channels.default_channel() if channels is not None else None
            except Exception:
                chosen = None
            if chosen is None:
                return Target(None, to, reason="no-last-route")
            return Target(chosen, to, account_id)
        if to is not None and to != last_to:
            return Target(last_channel, to, account_id or last_account)
        return Target(last_channel, last_to, account_id or last_account, last_thread)
    if to is None and last_channel == requested:
        return Target(requested, last_to, account_id or last_account, last_thread)
    if to is None:
        return Target(requested, None, account_id, reason="no-recipient")
    return Target(requested, to, account_id)


async def send_text(channels: Any, target: Target, text: str) -> dict[str, Any]:
    """Send ``text`` (Markdown) to ``target``; raises the channel's error on failure.

    An account that is not ready (still starting after a gateway start, or
    reconnecting) is tried again about every second for up to :data:`READY_WAIT_S`."""
    import time

    from moltbot.channels.errors import ChannelNotReady
    from moltbot.channels.types import OutboundMessage
    from moltbot.errors import RetryLaterError

    if channels is None:
        raise RetryLaterError("no messaging channel is running")
    message = OutboundMessage(text=text, thread_id=target.thread_id)
    deadline = time.monotonic() + READY_WAIT_S
    while True:
        try:
            result = await channels.send(
                target.channel, target.to, message, account_id=target.account_id
            )
            break
        except ChannelNotReady:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise
            runner = channels.runner(target.channel, target.account_id)
            if not await runner.wait_ready(remaining):  # never started yet
                raise
            await asyncio.sleep(min(RETRY_S, max(0.0, deadline - time.monotonic())))
    return {"channel": result.channel, "to": result.chat_id, "messageId": result.message_id}


__all__ = ["Target", "resolve_target", "send_text"]
