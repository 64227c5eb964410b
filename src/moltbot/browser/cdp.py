"""Chrome's DevTools HTTP endpoints (``/json/*``): reachability and tabs.

Everything here is a short HTTP request with an explicit timeout; a Chrome that
does not answer in time counts as not running. Credentials in a ``cdpUrl``
(``http://user:pass@host:port``) are sent as Basic auth by aiohttp.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp

from moltbot.browser.errors import BrowserError, not_found


def http_base(endpoint: str) -> str:
    """``ws://h:p/devtools/browser/x`` or ``http://h:p/`` -> ``http://h:p``."""
    parts = urlsplit(endpoint)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, "", "", "")).rstrip("/")


def tab_view(target: dict[str, Any]) -> dict[str, Any]:
    return {
        "targetId": target.get("id"),
        "title": target.get("title", ""),
        "url": target.get("url", ""),
        "type": target.get("type", "page"),
    }


class DevTools:
    """Calls to Chrome's ``/json`` API over one aiohttp session, opened at the first
    call (inside the event loop) and closed by :meth:`shutdown`."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def shutdown(self) -> None:
        """Close the session (a later call opens a new one)."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _json(
        self, method: str, endpoint: str, path: str, timeout: float, *, text: bool = False
    ) -> Any:
        url = http_base(endpoint) + path
        async with self._client().request(
            method, url, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            if response.status == 405 and method == "PUT":
                return await self._json("GET", endpoint, path, timeout)
            if response.status >= 400:
                text = (await response.text())[:200]
                raise BrowserError(
                    f"Chrome answered {response.status} to {path}: {text}",
                    status=404 if response.status == 404 else 502,
                )
            if text:  # /json/activate and /json/close answer with plain text
                return await response.text()
            return await response.json(content_type=None)

    async def version(self, endpoint: str, timeout: float = 1.0) -> dict[str, Any] | None:
        """``/json/version``, or ``None`` when nothing (or not Chrome) answers in time."""
        try:
            data = await self._json("GET", endpoint, "/json/version", timeout)
        except (TimeoutError, aiohttp.ClientError, BrowserError, ValueError, OSError):
            return None
        return data if isinstance(data, dict) and "Browser" in data else None

    async def reachable(self, endpoint: str, timeout: float = 1.0) -> bool:
        return await self.version(endpoint, timeout) is not None

    async def targets(self, endpoint: str, timeout: float = 3.0) -> list[dict[str, Any]]:
        """Page tabs (``type == "page"``), as ``{targetId, title, url, type}``."""
        data = await self._json("GET", endpoint, "/json/list", timeout)
        return [tab_view(t) for t in data or [] if t.get("id") and t.get("type") == "page"]

    async def open(self, endpoint: str, url: str, timeout: float = 10.0) -> dict[str, Any]:
        data = await self._json(
            "PUT", endpoint, "/json/new?" + quote(url, safe=":/?&=#%@+,;~"), timeout
        )
        return tab_view(data)

    async def activate(self, endpoint: str, target_id: str, timeout: float = 3.0) -> None:
        await self._json("GET", endpoint, f"/json/activate/{quote(target_id)}", timeout, text=True)

    async def close(self, endpoint: str, target_id: str, timeout: float = 3.0) -> None:
        await self._json("GET", endpoint, f"/json/close/{quote(target_id)}", timeout, text=True)


def match_target(tabs: list[dict[str, Any]], wanted: str) -> dict[str, Any]:
    """The tab whose id is ``wanted`` or starts with it (case-insensitive, unique)."""
    for tab in tabs:
        if tab["targetId"] == wanted:
            return tab
    prefix = wanted.lower()
    hits = [tab for tab in tabs if str(tab["targetId"]).lower().startswith(prefix)]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise BrowserError(
            f"ambiguous target id prefix {wanted!r} ({len(hits)} tabs match)",
            status=409,
            hint="give more characters of the id",
        )
    raise not_found(f"tab not found: {wanted}", hint="list tabs with `moltbot browser tabs`")
