"""Telegram ``Update`` JSON → :class:`InboundMessage`. Pure."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from moltbot.channels.errors import UnsupportedMessage
from moltbot.channels.types import InboundMessage, Media, ReplyContext, Sender

GENERAL_TOPIC = "1"


def sender_of(user: Mapping[str, Any] | None) -> Sender:
    if not user:
        return Sender(id="unknown")
    name = " ".join(p for p in (user.get("first_name"), user.get("last_name")) if p) or None
    return Sender(
        id=str(user.get("id")),
        name=name,
        username=user.get("username"),
        is_bot=bool(user.get("is_bot")),
    )


def _media(message: Mapping[str, Any]) -> tuple[Media, ...]:
    if photos := message.get("photo"):
        largest = max(photos, key=lambda p: (p.get("file_size") or 0, p.get("width") or 0))
        return (
            Media(
                "image",
                mime_type="image/jpeg",
                size=largest.get("file_size"),
                remote_id=largest.get("file_id"),
            ),
        )
    for key, kind in (
        ("document", "document"),
        ("audio", "audio"),
        ("voice", "voice"),
        ("video", "video"),
        ("sticker", "sticker"),
    ):
        item = message.get(key)
        if item:
            return (
                Media(
                    kind,
                    mime_type=item.get("mime_type"),  # type: ignore[arg-type]
                    file_name=item.get("file_name"),
                    size=item.get("file_size"),
                    remote_id=item.get("file_id"),
                ),
            )
    return ()


def _mentioned(
    text: str, entities: list[Mapping[str, Any]], bot_id: str | None, bot_username: str | None
) -> bool:
    name = (bot_username or "").lower()
    encoded = text.encode("utf-16-le")
    for entity in entities:
        kind = entity.get("type")
        user = entity.get("user") or {}
        if kind == "text_mention" and bot_id and str(user.get("id")) == bot_id:
            return True
        if kind in ("mention", "bot_command") and name:
            start, length = int(entity.get("offset", 0)), int(entity.get("length", 0))
            piece = encoded[start * 2 : (start + length) * 2].decode("utf-16-le", "replace").lower()
            if piece == f"@{name}" or piece.endswith(f"@{name}"):
                return True
    return False


def normalize_update(
    update: Mapping[str, Any], *, account_id: str, bot_id: str | None, bot_username: str | None
) -> InboundMessage:
    """Raises :class:`UnsupportedMessage` for updates that are not new messages
    in a private chat, group or supergroup."""
    message = update.get("message")
    if not isinstance(message, Mapping):
        kinds = [key for key in update if key != "update_id"]
        raise UnsupportedMessage(f"unsupported telegram update kind: {', '.join(kinds) or '?'}")
    chat = message.get("chat") or {}
    chat_kind = chat.get("type")
    if chat_kind == "private":
        chat_type = "direct"
    elif chat_kind in ("group", "supergroup"):
        chat_type = "group"
    else:
        raise UnsupportedMessage(f"unsupported telegram chat type: {chat_kind}")
    text = message.get("text") or message.get("caption") or ""
    entities = list(message.get("entities") or message.get("caption_entities") or [])
    sender = sender_of(message.get("from"))
    thread_id: str | None = None
    if chat.get("is_forum"):
        topic = message.get("message_thread_id") if message.get("is_topic_message") else None
        thread_id = str(topic) if topic else GENERAL_TOPIC
    reply_to = None
    replied = message.get("reply_to_message")
    if isinstance(replied, Mapping) and not (
        thread_id and replied.get("message_id") == message.get("message_thread_id")
    ):
        replied_sender = sender_of(replied.get("from"))
        reply_to = ReplyContext(
            message_id=str(replied.get("message_id")),
            sender=replied_sender,
            text=replied.get("text") or replied.get("caption"),
            to_bot=bool(bot_id) and replied_sender.id == bot_id,
        )
    mentioned = _mentioned(text, entities, bot_id, bot_username) or bool(
        reply_to and reply_to.to_bot
    )
    media = _media(message)
    if not text and not media:
        if message.get("location"):
            loc = message["location"]
            text = f"[location] {loc.get('latitude')},{loc.get('longitude')}"
        else:
            kinds = [k for k in message if k not in ("message_id", "from", "chat", "date")]
            raise UnsupportedMessage(f"unsupported telegram message content: {', '.join(kinds)}")
    if bot_username and chat_type == "group":
        stripped = text.strip()
        prefix = f"@{bot_username}"
        if stripped.lower().startswith(prefix.lower()):
            text = stripped[len(prefix) :].lstrip(" ,:") or stripped
    return InboundMessage(
        channel="telegram",
        account_id=account_id,
        message_id=str(message.get("message_id")),
        chat_type=chat_type,
        chat_id=str(chat.get("id")),
        sender=sender,
        text=text,
        raw=update,
        timestamp=float(message.get("date") or 0) or time.time(),
        thread_id=thread_id,
        chat_title=chat.get("title"),
        was_mentioned=mentioned,
        can_detect_mention=bool(bot_username or bot_id),
        reply_to=reply_to,
        media=media,
    )
