"""Playwright over CDP: one connection per browser endpoint, pages by target id.

Playwright is imported lazily; without it the routes that need it answer 501.
Connections are cached per endpoint (so refs from a snapshot stay valid for the
next action: Playwright resolves ``aria-ref`` against the latest snapshot taken
in the same connection) and dropped when Chrome disconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from moltbot.browser.errors import BrowserError, not_found

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, Playwright

CONNECT_TIMEOUT_MS = 20_000
CONSOLE_LIMIT = 500

log = logging.getLogger(__name__)


def _missing(feature: str) -> BrowserError:
    return BrowserError(
        f"Playwright is not available in this installation; {feature!r} is unsupported",
        status=501,
        hint="install it: pip install playwright (no browser download is needed)",
    )


class PlaywrightPool:
    """Owns the Playwright driver and its CDP connections. Close with :meth:`close`."""

    def __init__(self) -> None:
        self._driver: Playwright | None = None
        self._driver_lock = asyncio.Lock()
        self._browsers: dict[str, Browser] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._targets: dict[Page, str] = {}  # page -> CDP target id
        self._console: dict[Page, deque[dict[str, Any]]] = {}
        self._refs: dict[Page, set[str]] = {}  # refs of the latest snapshot per page

    @property
    def connected(self) -> list[str]:
        return [endpoint for endpoint, b in self._browsers.items() if b.is_connected()]

    async def _playwright(self, feature: str) -> Playwright:
        async with self._driver_lock:
            if self._driver is None:
                try:
                    from playwright.async_api import async_playwright
                except ImportError:
                    raise _missing(feature) from None
                self._driver = await async_playwright().start()
            return self._driver

    async def browser(self, endpoint: str, feature: str = "browser") -> Browser:
        """The cached connection to ``endpoint`` (``http://host:port`` or a ws URL)."""
        cached = self._browsers.get(endpoint)
        if cached is not None and cached.is_connected():
            return cached
        lock = self._locks.setdefault(endpoint, asyncio.Lock())
        async with lock:
            cached = self._browsers.get(endpoint)
            if cached is not None and cached.is_connected():
                return cached
            driver = await self._playwright(feature)
            try:
                browser = await driver.chromium.connect_over_cdp(
                    endpoint, timeout=CONNECT_TIMEOUT_MS
                )
            except Exception as exc:
                raise BrowserError(
                    f"cannot attach Playwright to {endpoint}: {_first_line(exc)}", status=503
                ) from None

            def forget(_: Any, endpoint: str = endpoint, browser: Browser = browser) -> None:
                if self._browsers.get(endpoint) is browser:
                    del self._browsers[endpoint]
                self._purge(browser)

            browser.on("disconnected", forget)
            for context in browser.contexts:
                context.on("page", self._watch)
                for page in context.pages:
                    self._watch(page)
            self._browsers[endpoint] = browser
            return browser

    def _purge(self, browser: Browser) -> None:
        for page in [p for p in self._console if p.context.browser is browser]:
            self._console.pop(page, None)
            self._targets.pop(page, None)
            self._refs.pop(page, None)

    def _watch(self, page: Page) -> None:
        key = page
        if key in self._console:
            return
        buffer: deque[dict[str, Any]] = deque(maxlen=CONSOLE_LIMIT)
        self._console[key] = buffer

        def on_console(message: Any) -> None:
            location = message.location or {}
            buffer.append(
                {
                    "type": message.type,
                    "text": message.text,
                    "url": location.get("url"),
                    "line": location.get("lineNumber"),
                    "ts": int(time.time() * 1000),
                }
            )

        def on_error(error: Any) -> None:
            buffer.append(
                {
                    "type": "pageerror",
                    "text": str(error),
                    "url": page.url,
                    "line": None,
                    "ts": int(time.time() * 1000),
                }
            )

        def on_close(_: Any) -> None:
            self._console.pop(key, None)
            self._targets.pop(key, None)
            self._refs.pop(key, None)

        def on_navigated(frame: Any) -> None:
            if frame == page.main_frame:
                self._refs.pop(key, None)

        page.on("console", on_console)
        page.on("pageerror", on_error)
        page.on("close", on_close)
        page.on("framenavigated", on_navigated)

    async def target_id(self, page: Page) -> str:
        key = page
        if key not in self._targets:
            session = await page.context.new_cdp_session(page)
            try:
                info = await session.send("Target.getTargetInfo")
            finally:
                with contextlib.suppress(Exception):
                    await session.detach()
            self._targets[key] = info["targetInfo"]["targetId"]
        return self._targets[key]

    async def page(self, endpoint: str, target_id: str, feature: str, wait: float = 5.0) -> Page:
        """The Playwright page of tab ``target_id`` (waits briefly for a new tab to appear)."""
        browser = await self.browser(endpoint, feature)
        deadline = time.monotonic() + wait
        while True:
            for context in browser.contexts:
                for page in context.pages:
                    self._watch(page)
                    try:
                        if await self.target_id(page) == target_id:
                            return page
                    except Exception:  # a page closing while we look
                        continue
            if time.monotonic() > deadline:
                raise not_found(
                    f"tab not found: {target_id}", hint="list tabs with `moltbot browser tabs`"
                )
            await asyncio.sleep(0.1)

    def console(self, page: Page) -> list[dict[str, Any]]:
        self._watch(page)
        return list(self._console.get(page, ()))

    def remember_refs(self, page: Page, refs: set[str]) -> None:
        self._watch(page)
        self._refs[page] = refs

    def check_ref(self, page: Page, ref: str) -> None:
        """Refuse a ref the latest snapshot of this page did not hand out (fast and clear,
        instead of waiting for an element that cannot appear)."""
        known = self._refs.get(page)
        if known is None:
            raise BrowserError(
                f"no snapshot of this tab since it last loaded; ref {ref} is unknown",
                status=409,
                hint="take a snapshot first and use its refs",
            )
        if ref not in known:
            raise not_found(
                f"ref {ref} is not in the latest snapshot of this tab",
                hint="refs change when the page changes: take a new snapshot",
            )

    def clear_console(self, page: Page) -> None:
        buffer = self._console.get(page)
        if buffer is not None:
            buffer.clear()

    async def disconnect(self, endpoint: str) -> None:
        browser = self._browsers.pop(endpoint, None)
        if browser is not None:
            self._purge(browser)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(browser.close(), 5)

    async def close(self) -> None:
        for endpoint in list(self._browsers):
            await self.disconnect(endpoint)
        if self._driver is not None:
            driver, self._driver = self._driver, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(driver.stop(), 10)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
