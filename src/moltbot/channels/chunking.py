"""Splitting long replies into platform-sized messages. Pure functions.

Breaks are chosen, in order of preference, at a blank line, a line end, then
any whitespace, taking the longest chunk that fits. A code fence is never cut
open: when a single fenced block is longer than the limit, the chunk closes
the fence and the next one reopens it with the same info string.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

ChunkMode = Literal["length", "newline"]
Measure = Callable[[str], int]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit Telegram counts in."""
    return len(text.encode("utf-16-le")) // 2


def open_fence(text: str) -> str | None:
    """The opening line of the fence still open at the end of ``text``, else None."""
    opener: str | None = None
    marker = ""
    for line in text.split("\n"):
        found = _FENCE.match(line)
        if not found:
            continue
        if opener is None:
            opener, marker = line.strip(), found.group(1)
        elif (
            found.group(1)[0] == marker[0]
            and len(found.group(1)) >= len(marker)
            and not found.group(2).strip()
        ):
            opener, marker = None, ""
    return opener


def chunk_text(
    text: str, limit: int, *, mode: ChunkMode = "length", measure: Measure = len
) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` (as counted by ``measure``)."""
    if limit < 20:
        raise ValueError("chunk limit too small")
    text = text.strip("\n")
    if not text.strip():
        return []
    if mode == "newline":
        out: list[str] = []
        for paragraph in _paragraphs(text):
            out.extend(chunk_text(paragraph, limit, measure=measure))
        return out
    chunks: list[str] = []
    rest = text
    while rest:
        if measure(rest) <= limit:
            chunks.append(rest)
            break
        window = rest[: _fit(rest, limit, measure)]
        cut = _cut_outside_fence(window, minimum=len(window) // 4)
        opener = open_fence(window) if cut is None else None
        if cut is None and opener is None:
            cut = _cut_outside_fence(window, minimum=1)
        if cut is not None:
            chunk, rest = rest[:cut].rstrip(), rest[cut:].lstrip("\n")
            if rest[:1] == " ":
                rest = rest[1:]
            if chunk.strip():
                chunks.append(chunk)
            continue
        if opener is None:  # one long word: cut hard
            chunks.append(window)
            rest = rest[len(window) :]
            continue
        chunk, rest = _split_fence(rest, opener, limit, measure)
        chunks.append(chunk)
    return [c for c in chunks if c.strip()]


def _split_fence(text: str, opener: str, limit: int, measure: Measure) -> tuple[str, str]:
    """Cut inside a fenced block: close it in this chunk, reopen it in the next."""
    marker = _FENCE.match(opener).group(1)  # type: ignore[union-attr]
    closing = "\n" + marker
    budget = _fit(text, limit - measure(closing), measure)
    if budget <= len(opener) + 1:  # pathological opener line: plain hard cut
        return text[:limit], text[limit:]
    head = text[:budget]
    cut = head.rfind("\n")
    # a cut must leave the next chunk (opener + remainder) shorter than this text
    while cut > len(opener) and open_fence(head[:cut]) is None:
        cut = head.rfind("\n", 0, cut)
    hard = cut <= len(opener)
    if hard:
        cut = budget
    chunk = text[:cut].rstrip("\n") + closing
    remainder = text[cut:] if hard else text[cut + 1 :]
    return chunk, (opener + "\n" + remainder if remainder.strip() else "")


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks; blank lines inside a code fence do not separate."""
    out: list[str] = []
    current: list[str] = []
    for line in text.split("\n"):
        if not line.strip() and current and open_fence("\n".join(current)) is None:
            out.append("\n".join(current))
            current = []
            continue
        current.append(line)
    if current:
        out.append("\n".join(current))
    return [p for p in out if p.strip()]


def _fit(text: str, limit: int, measure: Measure) -> int:
    """The longest prefix length of ``text`` whose measure is at most ``limit``."""
    if measure is len:
        return min(len(text), limit)
    lo, hi = 0, min(len(text), limit)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if measure(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _cut_outside_fence(window: str, *, minimum: int) -> int | None:
    for separator in ("\n\n", "\n", " "):
        position = window.rfind(separator)
        while position >= minimum and position > 0:
            if open_fence(window[:position]) is None:
                return position
            position = window.rfind(separator, 0, position)
    return None
