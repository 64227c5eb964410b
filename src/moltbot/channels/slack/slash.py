"""Slack slash commands: the chat commands as ``/status``, ``/new`` ... (native, when
``commands.native`` is on for Slack) and one catch-all ``/moltbot <text>``
(``slashCommand.enabled``). Pure: payload → :class:`InboundMessage`.

A slash command is handled as a message that mentions the bot. While answers are
private (``slashCommand.ephemeral``, the default) it counts as a direct message from
its user — their DM rules, their session, so nothing said privately lands in a shared
channel's session; with public answers it is a message in the conversation it was
typed in. Either way the reply goes back through the command's ``response_url``.
Slack apps declare their slash commands in the app's settings (the channel logs the
list it answers when it starts).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from moltbot.channels.errors import UnsupportedMessage
from moltbot.channels.slack.normalize import chat_type_of
from moltbot.channels.types import InboundMessage, Sender

SLACK_HOOKS = "https://hooks.slack.com/"
RESPONSE_URL_TTL_S = 1800.0
"""Slack accepts answers on a ``response_url`` for 30 minutes."""
RESPONSES_PER_URL = 5
"""... and at most five of them."""


def slash_text(
    payload: Mapping[str, Any], *, native: set[str], catch_all: str | None, known: set[str]
) -> str | None:
    """The message text a slash command stands for, or None when it is none of ours:
    ``/status x`` (a native command) → ``/status x``; ``/moltbot status`` or
    ``/moltbot /status`` (the catch-all, ``known`` = command names) → ``/status``;
    ``/moltbot hello`` → ``hello``."""
    name = str(payload.get("command") or "").strip().lstrip("/").lower()
    text = str(payload.get("text") or "").strip()
    if name in native:
        return f"/{name} {text}".strip()
    if catch_all is None or name != catch_all.lower():
        return None
    first = text.split(maxsplit=1)[0].lstrip("/").lower() if text else ""
    if first in known:
        return "/" + text.lstrip("/")
    return text


def response_url_allowed(url: str, api_url: str) -> bool:
    """Slack's hooks host, or the host of the configured Web API (a stand-in or a
    proxy): a forged ``response_url`` must not make the gateway post anywhere else."""
    if url.startswith(SLACK_HOOKS):
        return True
    mine, theirs = urlsplit(api_url), urlsplit(url)
    return bool(theirs.scheme in ("http", "https") and mine.netloc) and (
        (theirs.scheme, theirs.netloc) == (mine.scheme, mine.netloc)
    )


def normalize_slash(
    payload: Mapping[str, Any], text: str, *, account_id: str, private: bool
) -> InboundMessage:
    """The slash command as a message mentioning the bot (``private``: a direct message
    from its user); raises :class:`UnsupportedMessage` without user, channel or
    trigger id."""
    user = str(payload.get("user_id") or "")
    channel_id = str(payload.get("channel_id") or "")
    trigger = str(payload.get("trigger_id") or "")
    if not user or not channel_id or not trigger:
        raise UnsupportedMessage("slash command without user_id, channel_id or trigger_id")
    kind = "im" if payload.get("channel_name") == "directmessage" else None
    return InboundMessage(
        channel="slack",
        account_id=account_id,
        message_id="slash:" + trigger,
        chat_type="direct" if private else chat_type_of(channel_id, kind),  # type: ignore[arg-type]
        chat_id=channel_id,
        sender=Sender(id=user, username=str(payload.get("user_name") or "") or None),
        text=text,
        raw=payload,
        timestamp=time.time(),
        chat_title=str(payload.get("channel_name") or "") or None,
        was_mentioned=True,
        native_command=True,
    )
