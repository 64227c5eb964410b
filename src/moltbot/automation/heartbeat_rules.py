"""Pure rules of heartbeat runs: the ``HEARTBEAT_OK`` contract, the empty-checklist
test and active hours.

- **HEARTBEAT_OK**: a reply that starts or ends with ``HEARTBEAT_OK`` (also wrapped
  in ``**``/``<b>``) is an acknowledgement: the token is removed, and the reply is
  not delivered when what is left is at most ``ackMaxChars`` characters.
- **Empty checklist**: ``HEARTBEAT.md`` made only of blank lines, Markdown
  headings (``# ...``), empty list items (``-``, ``- [ ]``) and HTML comments is
  empty: the run is skipped (no model call). A missing file is not empty.
- **Active hours** ``{start: "08:00", end: "22:00", timezone}``: runs only inside
  the window (``end`` may be ``24:00``; a window past midnight wraps, ``22:00``-
  ``06:00``); equal start and end mean always.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

HEARTBEAT_TOKEN = "HEARTBEAT_OK"
DEFAULT_PROMPT = (
    "Read HEARTBEAT.md if it exists (workspace context). Follow it strictly. "
    "Do not infer or repeat old tasks from prior chats. "
    "If nothing needs attention, reply HEARTBEAT_OK."
)
DEFAULT_EVERY = "30m"
DEFAULT_ACK_MAX_CHARS = 300
_COMMENT = re.compile(r"<!--.*?(-->|$)", re.S)
_HEADING = re.compile(r"^#+(\s|$)")
_EMPTY_ITEM = re.compile(r"^[-*+]\s*(\[[\sxX]?\]\s*)?$")
_TIME = re.compile(r"^([01]\d|2[0-3]|24):([0-5]\d)$")
_MARKUP_EDGES = re.compile(r"^[*`~_]+|[*`~_]+$")
_TAG = re.compile(r"<[^>]*>")


def effectively_empty(content: str | None) -> bool:
    if content is None:
        return False
    for line in _COMMENT.sub("", content).splitlines():
        text = line.strip()
        if text and not _HEADING.match(text) and not _EMPTY_ITEM.match(text):
            return False
    return True


def strip_token(text: str | None, ack_max_chars: int) -> tuple[bool, str]:
    """``(skip, text)``: whether the reply is only an acknowledgement, and the reply
    without the token (module docstring)."""
    raw = (text or "").strip()
    if not raw:
        return True, ""
    candidates = [raw, _MARKUP_EDGES.sub("", _TAG.sub(" ", raw).replace("&nbsp;", " ")).strip()]
    for candidate in candidates:
        rest, did = _strip_edges(candidate)
        if did:
            return len(rest.strip(".!:-— ")) <= max(0, ack_max_chars), rest
    return False, raw


def _strip_edges(text: str) -> tuple[str, bool]:
    did = False
    while True:
        text = text.strip()
        if text.startswith(HEARTBEAT_TOKEN):
            text, did = text[len(HEARTBEAT_TOKEN) :], True
        elif text.endswith(HEARTBEAT_TOKEN):
            text, did = text[: -len(HEARTBEAT_TOKEN)], True
        else:
            return text, did


def parse_time(value: str, *, allow_24: bool) -> int | None:
    """``"HH:MM"`` → minutes since midnight; ``None`` when malformed."""
    match = _TIME.match(value.strip())
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour == 24:
        return 24 * 60 if allow_24 and minute == 0 else None
    return hour * 60 + minute


def within_active_hours(start: str, end: str, now_ms: int, zone: tzinfo) -> bool:
    first, last = parse_time(start, allow_24=False), parse_time(end, allow_24=True)
    if first is None or last is None or first == last:
        return True
    local = datetime.fromtimestamp(now_ms / 1000, zone)
    minute = local.hour * 60 + local.minute
    if last > first:
        return first <= minute < last
    return minute >= first or minute < last


__all__ = [
    "DEFAULT_ACK_MAX_CHARS",
    "DEFAULT_EVERY",
    "DEFAULT_PROMPT",
    "HEARTBEAT_TOKEN",
    "effectively_empty",
    "parse_time",
    "strip_token",
    "within_active_hours",
]
