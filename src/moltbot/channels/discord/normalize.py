"""discord.py ``Message`` → :class:`InboundMessage`, and reply chunking. Pure."""

from __future__ import annotations

import re
from typing import Any

from moltbot.channels.chunking import chunk_text, open_fence
from moltbot.channels.errors import UnsupportedMessage
from moltbot.channels.types import InboundMessage, Media, ReplyContext, Sender
from moltbot.sessions.media import kind_for

THREAD_TYPES = {10, 11, 12}  # news, public and private threads
DM_TYPES = {1}
GROUP_DM_TYPES = {3}


def channel_type(channel: Any) -> int:
    value = getattr(channel, "type", None)
    return int(getattr(value, "value", value if isinstance(value, int) else -1))


def sender_of(author: Any) -> Sender:
    return Sender(
        id=str(author.id),
        name=getattr(author, "global_name", None) or getattr(author, "display_name", None),
        username=getattr(author, "name", None),
        is_bot=bool(getattr(author, "bot", False)),
    )


def strip_mention(text: str, bot_id: str) -> str:
    """The text without the bot's own ``<@id>`` / ``<@!id>`` mention."""
    return re.sub(rf"<@!?{re.escape(bot_id)}>[ ,:]*", "", text).strip()


def media_of(attachments: Any) -> tuple[Media, ...]:
    out = []
    for item in attachments or ():
        mime = (getattr(item, "content_type", None) or "").split(";")[0] or None
        out.append(
            Media(
                kind_for(mime or "application/octet-stream"),
                mime_type=mime,
                file_name=getattr(item, "filename", None),
                size=getattr(item, "size", None),
                remote_id=getattr(item, "url", None),
            )
        )
    return tuple(out)


def normalize_message(message: Any, *, account_id: str, bot_id: str) -> InboundMessage:
    """Raises :class:`UnsupportedMessage` for system messages and group DMs."""
    kind = getattr(getattr(message, "type", None), "value", 0)
    if kind not in (0, 19):  # default and reply
        raise UnsupportedMessage(f"unsupported discord message type {kind}")
    channel = message.channel
    ctype = channel_type(channel)
    if ctype in GROUP_DM_TYPES:
        raise UnsupportedMessage("group DMs are not handled")
    thread_id: str | None = None
    chat_id = str(channel.id)
    if ctype in DM_TYPES or getattr(message, "guild", None) is None:
        chat_type = "direct"
    else:
        chat_type = "channel"
        if ctype in THREAD_TYPES:
            thread_id = str(channel.id)
            chat_id = str(getattr(channel, "parent_id", None) or channel.id)
    mentioned = any(str(user.id) == bot_id for user in getattr(message, "mentions", ()) or ())
    reply_to = None
    reference = getattr(message, "reference", None)
    if reference is not None and reference.message_id:
        resolved = getattr(reference, "resolved", None)
        author = getattr(resolved, "author", None)
        to_bot = author is not None and str(author.id) == bot_id
        reply_to = ReplyContext(
            message_id=str(reference.message_id),
            sender=sender_of(author) if author is not None else None,
            text=getattr(resolved, "content", None),
            to_bot=to_bot,
        )
        mentioned = mentioned or to_bot
    text = strip_mention(str(message.content or ""), bot_id)
    media = media_of(getattr(message, "attachments", ()))
    if not text and not media:
        raise UnsupportedMessage("discord message without text or attachments")
    guild = getattr(message, "guild", None)
    return InboundMessage(
        channel="discord",
        account_id=account_id,
        message_id=str(message.id),
        chat_type=chat_type,  # type: ignore[arg-type]
        chat_id=chat_id,
        sender=sender_of(message.author),
        text=text,
        raw={
            "id": str(message.id),
            "channel_id": str(channel.id),
            "guild_id": str(guild.id) if guild is not None else None,
            "content": message.content,
        },
        timestamp=message.created_at.timestamp(),
        thread_id=thread_id,
        chat_title=getattr(channel, "name", None),
        was_mentioned=mentioned,
        can_detect_mention=True,
        reply_to=reply_to,
        media=media,
    )


def chunk_reply(text: str, limit: int, max_lines: int) -> list[str]:
    """Chunks of at most ``limit`` characters and ``max_lines`` lines; a code fence cut
    by the line limit is closed and reopened (as :func:`chunk_text` does for length)."""
    out: list[str] = []
    for chunk in chunk_text(text, max(100, limit - 16)):
        lines = chunk.split("\n")
        max_lines = max(3, max_lines)
        while len(lines) > max_lines:
            head = "\n".join(lines[:max_lines])
            rest = lines[max_lines:]
            opener = open_fence(head)
            if opener is not None:  # leave room for the closing fence
                head = "\n".join(lines[: max_lines - 1]) + "\n```"
                rest = [opener, *lines[max_lines - 1 :]]
            out.append(head)
            lines = rest
        out.append("\n".join(lines))
    return [c for c in out if c.strip()]
