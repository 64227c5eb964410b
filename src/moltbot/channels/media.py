"""Media helpers shared by channels: capped downloads and ``MEDIA:`` reply lines.

A reply may name files to send, one per line, as upstream's agents do::

    Here is the chart.
    MEDIA: charts/latency.png
    MEDIA: https://example.com/report.pdf

:func:`split_media_lines` takes those lines out of the text; the pipeline
resolves each (a workspace path, confined like the file tools, or a URL) and
sends them with the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from moltbot.channels.errors import ChannelNotReady, TargetError
from moltbot.sessions.media import MediaTooLarge, human_size

_MEDIA_LINE = re.compile(r"^[ \t]*MEDIA:[ \t]*(\S.*?)[ \t]*$", re.MULTILINE)
_FENCE = re.compile(r"^[ \t]*(```|~~~)", re.MULTILINE)


def split_media_lines(text: str) -> tuple[str, list[str]]:
    """``text`` without its ``MEDIA: <path or URL>`` lines (outside code fences),
    and the items they named, in order."""
    items: list[str] = []
    kept: list[str] = []
    fenced = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _MEDIA_LINE.fullmatch(line)
        if match:
            items.append(match.group(1).strip().strip("`\"'<>"))
        else:
            kept.append(line)
    return "\n".join(kept).strip(), items


async def read_capped(chunks: Any, max_bytes: int, what: str = "attachment") -> bytes:
    """Join an async iterator of byte chunks, refusing more than ``max_bytes``."""
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) > max_bytes:
            raise MediaTooLarge(f"{what} is over the limit of {human_size(max_bytes)}")
    return bytes(data)


async def fetch_url(
    url: str,
    max_bytes: int,
    *,
    headers: Mapping[str, str] | None = None,
    session: Any = None,
    what: str = "attachment",
) -> bytes:
    """GET ``url`` (aiohttp) at most ``max_bytes`` long. Raises MediaTooLarge,
    TargetError (4xx) or ChannelNotReady (network, 5xx)."""
    import aiohttp

    own = session is None
    client = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
    try:
        async with client.get(url, headers=dict(headers or {})) as response:
            if response.status >= 500:
                raise ChannelNotReady(f"download of {what} failed: HTTP {response.status}")
            if response.status >= 400:
                raise TargetError(f"download of {what} refused: HTTP {response.status}")
            length = response.content_length
            if length is not None and length > max_bytes:
                raise MediaTooLarge(
                    f"{what} is {human_size(length)}, over the limit of {human_size(max_bytes)}"
                )
            return await read_capped(response.content.iter_chunked(65536), max_bytes, what)
    except aiohttp.ClientError as exc:
        raise ChannelNotReady(f"download of {what} failed: {exc}") from None
    finally:
        if own:
            await client.close()
