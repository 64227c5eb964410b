"""Slack event payloads → :class:`InboundMessage`. Pure."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

from moltbot.channels.errors import UnsupportedMessage
from moltbot.channels.types import InboundMessage, Media, Sender

_ACCEPTED_SUBTYPES = {None, "file_share", "thread_broadcast", "me_message"}
_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#([CG][A-Z0-9]+)(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")


def chat_type_of(channel_id: str, channel_type: str | None) -> str:
    if channel_type == "im" or channel_id.startswith("D"):
        return "direct"
    if channel_type == "mpim":
        return "group"
    return "channel"


def clean_text(text: str, bot_user_id: str | None) -> str:
    """Slack markup → plain text: the bot's own mention removed, others readable."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>[ ,:]*", "", text)
    text = _USER.sub(lambda m: f"@{m.group(1)}", text)
    text = _CHANNEL.sub(lambda m: f"#{m.group(2) or m.group(1)}", text)
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1), text)
    text = _SPECIAL.sub(lambda m: f"@{m.group(1)}", text)
    return html.unescape(text).strip()


def _media(event: Mapping[str, Any]) -> tuple[Media, ...]:
    out = []
    for item in event.get("files") or []:
        mime = item.get("mimetype") or ""
        kind = (
            "image"
            if mime.startswith("image/")
            else "audio"
            if mime.startswith("audio/")
            else "video"
            if mime.startswith("video/")
            else "document"
        )
        out.append(
            Media(
                kind,
                mime_type=mime or None,
                file_name=item.get("name"),  # type: ignore[arg-type]
                size=item.get("size"),
                remote_id=item.get("url_private"),
            )
        )
    return tuple(out)


def normalize_event(
    event: Mapping[str, Any],
    *,
    account_id: str,
    bot_user_id: str | None,
    bot_id: str | None,
    payload: Mapping[str, Any] | None = None,
) -> InboundMessage:
    """Raises :class:`UnsupportedMessage` for anything but a new user message."""
    kind = event.get("type")
    if kind not in ("message", "app_mention"):
        raise UnsupportedMessage(f"unsupported slack event: {kind}")
    subtype = event.get("subtype")
    if subtype not in _ACCEPTED_SUBTYPES and subtype != "bot_message":
        raise UnsupportedMessage(f"unsupported slack message subtype: {subtype}")
    channel_id = str(event.get("channel") or "")
    user = event.get("user") or event.get("bot_id") or ""
    if not channel_id or not user or not event.get("ts"):
        raise UnsupportedMessage("slack message without channel, user or ts")
    is_bot = bool(event.get("bot_id")) or subtype == "bot_message"
    raw_text = str(event.get("text") or "")
    mentioned = kind == "app_mention" or bool(bot_user_id and f"<@{bot_user_id}" in raw_text)
    ts = str(event["ts"])
    thread_ts = event.get("thread_ts")
    thread_id = str(thread_ts) if thread_ts and thread_ts != ts else None
    profile = event.get("user_profile") or {}
    sender = Sender(
        id=str(user),
        name=profile.get("real_name") or profile.get("display_name"),
        username=profile.get("name"),
        is_bot=is_bot,
    )
    return InboundMessage(
        channel="slack",
        account_id=account_id,
        message_id=ts,
        chat_type=chat_type_of(channel_id, event.get("channel_type")),  # type: ignore[arg-type]
        chat_id=channel_id,
        sender=sender,
        text=clean_text(raw_text, bot_user_id),
        raw=payload if payload is not None else event,
        timestamp=float(ts.split(".")[0] or 0),
        thread_id=thread_id,
        was_mentioned=mentioned,
        can_detect_mention=bool(bot_user_id),
        media=_media(event),
    )
