"""Matrix room events → :class:`InboundMessage`; Markdown → Matrix HTML. Pure."""

from __future__ import annotations

import re
import time
from collections.abc import Collection
from functools import lru_cache
from typing import Any

from moltbot.channels.types import InboundMessage, Media, ReplyContext, Sender
from moltbot.sessions.media import kind_for

MEDIA_MSGTYPES = {"m.image": "image", "m.file": "document", "m.audio": "audio", "m.video": "video"}
TEXT_MSGTYPES = {"m.text", "m.emote"}


@lru_cache(maxsize=1)
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    # raw HTML in the model's text is escaped, never passed through
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def markdown_html(text: str) -> str:
    """``org.matrix.custom.html`` for Markdown ``text``."""
    return str(_markdown().render(text)).strip()


def _strip_reply_fallback(body: str) -> str:
    """Drop the ``> <@user> quoted`` lines a reply carries for old clients."""
    lines = body.split("\n")
    while lines and lines[0].startswith(">"):
        lines.pop(0)
    if lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines)


def _mentioned(content: dict[str, Any], body: str, bot_id: str, bot_name: str | None) -> bool:
    mentions = content.get("m.mentions")
    if isinstance(mentions, dict) and bot_id in (mentions.get("user_ids") or ()):
        return True
    formatted = str(content.get("formatted_body") or "")
    if f"matrix.to/#/{bot_id}" in formatted:
        return True
    names = {bot_id, bot_id.split(":")[0].lstrip("@")}
    if bot_name:
        names.add(bot_name)
    lowered = body.lower()
    return any(
        re.search(rf"(?<![\w@]){re.escape(name.lower())}(?![\w])", lowered) for name in names
    )


def _strip_mention(body: str, bot_id: str, bot_name: str | None) -> str:
    names = [bot_id, *([bot_name] if bot_name else []), bot_id.split(":")[0].lstrip("@")]
    for name in names:
        pattern = rf"^\s*@?{re.escape(name)}\s*[:,]?\s*"
        stripped = re.sub(pattern, "", body, count=1, flags=re.IGNORECASE)
        if stripped != body:
            return stripped.strip() or body
    return body.strip()


def normalize_event(
    room: Any,
    event: Any,
    *,
    account_id: str,
    bot_id: str,
    bot_name: str | None,
    sent_by_bot: Collection[str] = (),
) -> InboundMessage | None:
    """None for anything that is not a user's text or media message (notices, state,
    edits: an edit is not a new question)."""
    source = getattr(event, "source", None) or {}
    if source.get("type") != "m.room.message":
        return None
    content = source.get("content") or {}
    msgtype = content.get("msgtype")
    relates = content.get("m.relates_to") or {}
    if relates.get("rel_type") == "m.replace":
        return None
    body = str(content.get("body") or "")
    media: tuple[Media, ...] = ()
    if msgtype in MEDIA_MSGTYPES:
        info = content.get("info") or {}
        mime = info.get("mimetype")
        url = content.get("url") or (content.get("file") or {}).get("url")
        name = content.get("filename") or body or None
        caption = body if content.get("filename") and body and body != name else None
        media = (
            Media(
                kind_for(mime) if mime else MEDIA_MSGTYPES[msgtype],  # type: ignore[arg-type]
                mime_type=mime,
                file_name=name,
                size=info.get("size"),
                remote_id=url,
                caption=caption,
            ),
        )
        body = caption or ""
    elif msgtype not in TEXT_MSGTYPES:
        return None
    thread_id = relates.get("event_id") if relates.get("rel_type") == "m.thread" else None
    reply_id = (relates.get("m.in_reply_to") or {}).get("event_id")
    is_falling_back = bool(relates.get("is_falling_back"))
    reply_to = None
    if reply_id and not (thread_id and is_falling_back):
        reply_to = ReplyContext(message_id=str(reply_id), to_bot=reply_id in sent_by_bot)
        body = _strip_reply_fallback(body)
    direct = getattr(room, "member_count", 3) <= 2
    mentioned = _mentioned(content, body, bot_id, bot_name) or bool(reply_to and reply_to.to_bot)
    text = body if direct else _strip_mention(body, bot_id, bot_name)
    if msgtype == "m.emote":
        text = f"* {text}"
    sender_id = str(source.get("sender") or getattr(event, "sender", ""))
    display = room.user_name(sender_id) if hasattr(room, "user_name") else None
    return InboundMessage(
        channel="matrix",
        account_id=account_id,
        message_id=str(source.get("event_id") or getattr(event, "event_id", "")),
        chat_type="direct" if direct else "group",
        chat_id=str(room.room_id),
        sender=Sender(
            id=sender_id,
            name=display if display and display != sender_id else None,
            username=sender_id.split(":")[0].lstrip("@") or None,
        ),
        text=text,
        raw={
            "event_id": source.get("event_id"),
            "room_id": room.room_id,
            "room_alias": getattr(room, "canonical_alias", None),
            "content": content,
        },
        timestamp=float(source.get("origin_server_ts") or 0) / 1000 or time.time(),
        thread_id=str(thread_id) if thread_id else None,
        chat_title=getattr(room, "display_name", None),
        was_mentioned=mentioned,
        can_detect_mention=True,
        reply_to=reply_to,
        media=media,
    )
