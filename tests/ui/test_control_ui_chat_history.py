"""Paged chat history in real Chromium: a long session opens on its last page; the
"Load earlier" button and scrolling to the top fetch the pages before it, in order,
without duplicates, keeping the reader's place, down to the first message."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.agents.gateway_agents import start
from tests.ui.ui_helpers import CHROMIUM, open_ui

from moltbot.agents.context import note_entry, user_entry
from moltbot.sessions.store import SessionStore

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium")

MESSAGES = 3_000
PAGE = 200  # the page's chat.history limit


async def seed(state: Path, count: int) -> None:
    """``count`` messages in the main session, through the session store's own API."""
    store = SessionStore(state / "agents" / "main" / "sessions")
    entry = await store.ensure("agent:main:main")
    for n in range(0, count, 2):
        run = f"run-{n}"
        store.write(entry, user_entry(f"message {n:04d}", run))
        reply = note_entry(f"message {n + 1:04d}", run, model="seed", stop_reason="stop")
        store.write(entry, reply)
    await store.sync(entry)


SHOWN = "() => [...document.querySelectorAll('#messages .msg')].map(m => m.textContent.trim())"
PAGES = "() => Number(document.getElementById('messages').dataset.pages)"


async def test_long_session_pages_back_to_the_first_message(browser, home):
    await seed(home / ".clawdbot-main", MESSAGES)
    gw = start(home, {})
    try:
        context, page, errors = await open_ui(browser, gw)
        await page.wait_for_selector("body[data-history]")
        expected = [f"message {n:04d}" for n in range(MESSAGES)]
        assert await page.evaluate(SHOWN) == expected[-PAGE:]
        assert await page.get_attribute("#messages", "data-more") == "true"
        # the view opens at the bottom, the newest message in sight
        await page.locator("#messages .msg").last.wait_for()
        assert await page.evaluate(
            "() => { const b = document.getElementById('messages');"
            " return b.scrollHeight - b.scrollTop - b.clientHeight < 2; }"
        )

        # the button works from the keyboard (focused without scrolling, so only it loads)
        button = page.locator("#load-earlier")
        assert await button.is_visible()
        assert await button.evaluate("b => b.tabIndex >= 0 && !b.disabled")
        await button.evaluate("b => b.focus({preventScroll: true})")
        await page.keyboard.press("Enter")
        await page.wait_for_function(f"() => ({PAGES})() === 2")
        assert await page.evaluate(SHOWN) == expected[-2 * PAGE :]

        # scrolling to the top fetches each earlier page; the reader's place is kept
        while await page.get_attribute("#messages", "data-more") == "true":
            pages = await page.evaluate(PAGES)
            kept = await page.evaluate(
                "() => { const box = document.getElementById('messages');"
                " box.scrollTop = 0;"
                " const first = document.querySelector('#messages .msg');"
                " first.id = 'was-first';"
                " return first.getBoundingClientRect().top; }"
            )
            await page.wait_for_function(f"() => ({PAGES})() > {pages}")
            moved = await page.evaluate(
                "() => { const el = document.getElementById('was-first');"
                " el.removeAttribute('id'); return el.getBoundingClientRect().top; }"
            )
            assert abs(moved - kept) < 2, (kept, moved)
            assert await page.evaluate("() => document.getElementById('messages').scrollTop") > 0
        assert await page.evaluate(PAGES) == MESSAGES // PAGE
        assert await page.evaluate(SHOWN) == expected
        assert not await button.is_visible()
        assert errors == []
        await context.close()
    finally:
        gw.stop()
