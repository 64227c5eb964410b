"""Shared by the Control UI tests: headless Chromium's flags and opening the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


async def open_ui(browser: Any, gw: Any, page_name: str = "chat") -> tuple[Any, Any, list[str]]:
    """A fresh context on ``page_name`` with the token in the fragment; returns the
    context, the page and the list that collects console errors and page errors."""
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{gw.http}/#token={gw.token}")
    await page.wait_for_selector("body[data-conn=connected]", timeout=15_000)
    if page_name != "chat":
        await page.click(f"#pages a[data-page={page_name}]")
        await page.wait_for_selector(f"#page-{page_name}:not([hidden])")
    return context, page, errors
