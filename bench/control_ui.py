"""The Control UI on loopback in headless Chromium: first paint, time until the chat is
usable (connected and its history shown), bytes transferred for `/`, and the time to
render a 10,000-message session (markdown replies) and scroll through it, and a real
10,000-message session opened and paged back to its first message ("Load earlier").

A real gateway subprocess (core only, no model needed) and Debian's chromium."""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path
from typing import Any

from _harness import Result, fresh_home

TITLE = "Control UI: load and a 10,000-message session"
ORDER = 90
RUNS = 7
MESSAGES = 10_000

RENDER = """async (count) => {
  const { renderMarkdown } = await import("/lib/markdown.js");
  const box = document.getElementById("messages");
  const started = performance.now();
  const fragment = document.createDocumentFragment();
  for (let i = 0; i < count; i++) {
    const el = document.createElement("div");
    el.className = i % 2 ? "msg assistant" : "msg user";
    const text = document.createElement("div");
    text.className = "text";
    const fence = "\\u0060".repeat(3);
    const reply = `Reply **${i}**:\\n- one\\n- two\\n\\n${fence}py\\nx = ${i}\\n${fence}`;
    renderMarkdown(text, i % 2 ? reply : `question ${i}`);
    el.append(text);
    fragment.append(el);
  }
  box.replaceChildren(fragment);
  box.scrollTop = box.scrollHeight;
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const rendered = performance.now() - started;
  const scrollStart = performance.now();
  for (const top of [0, box.scrollHeight / 2, box.scrollHeight]) {
    box.scrollTop = top;
    await new Promise((r) => requestAnimationFrame(r));
  }
  const nodes = box.querySelectorAll("*").length;
  return { rendered, scrolled: performance.now() - scrollStart, nodes };
}"""


PAGED = """async (key) => {
  const until = async (ok) => { while (!ok()) await new Promise((r) => requestAnimationFrame(r)); };
  const frames = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const chat = await import("/pages/chat.js");
  const box = document.getElementById("messages");
  let started = performance.now();
  chat.openSession(key);
  await until(() => document.body.dataset.history === key);
  await frames();
  const open = performance.now() - started;
  const pages = [];
  while (box.dataset.more === "true") {
    const before = Number(box.dataset.pages);
    started = performance.now();
    document.getElementById("load-earlier").click();
    await until(() => Number(box.dataset.pages) > before);
    await frames();
    pages.push(performance.now() - started);
  }
  started = performance.now();
  for (const top of [0, box.scrollHeight / 2, box.scrollHeight]) {
    box.scrollTop = top;
    await frames();
  }
  const scrolled = performance.now() - started;
  return { open, pages, scrolled, shown: box.querySelectorAll(".msg").length };
}"""
LONG_SESSION = "agent:main:long"


async def _seed(state: Path, count: int) -> None:
    """A ``count``-message session written with the session store's own API."""
    from moltbot.agents.context import note_entry, user_entry
    from moltbot.sessions.store import SessionStore

    store = SessionStore(state / "agents" / "main" / "sessions")
    entry = await store.ensure(LONG_SESSION)
    for n in range(0, count, 2):
        store.write(entry, user_entry(f"question {n}", f"run-{n}"))
        reply = f"Reply **{n}**:\n- one\n- two\n\n```py\nx = {n}\n```"
        store.write(entry, note_entry(reply, f"run-{n}", model="seed", stop_reason="stop"))
    await store.sync(entry)


async def _measure(base: str, token: str) -> list[Result]:
    from playwright.async_api import async_playwright
    from tests.ui.ui_helpers import ARGS, CHROMIUM

    paint, usable, transferred = [], [], []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            for _ in range(RUNS + 1):  # the first run warms the OS caches, not counted
                context = await browser.new_context()
                page = await context.new_page()
                sizes: list[Any] = []

                def seen(response: Any, sizes: list[Any] = sizes) -> None:
                    sizes.append(response)

                page.on("response", seen)
                await page.goto(f"{base}/#token={token}")
                await page.wait_for_selector("body[data-history]", timeout=30_000)
                ready = await page.evaluate("() => performance.now()")
                fcp = await page.evaluate(
                    "() => (performance.getEntriesByName('first-contentful-paint')[0]"
                    " || {}).startTime"
                )
                total = 0
                for response in sizes:
                    if response.url.startswith(base + "/"):
                        total += len(await response.body())
                paint.append(fcp or 0.0)
                usable.append(ready)
                transferred.append(total)
                await context.close()
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(f"{base}/#token={token}")
            await page.wait_for_selector("body[data-history]", timeout=30_000)
            big = await page.evaluate(RENDER, MESSAGES)
            await context.close()
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(f"{base}/#token={token}")
            await page.wait_for_selector("body[data-history]", timeout=30_000)
            paged = await page.evaluate(PAGED, LONG_SESSION)
            await context.close()
        finally:
            await browser.close()
    paint, usable = paint[1:], usable[1:]

    def row(name: str, samples: list[float], note: str) -> Result:
        spread = f"median of {len(samples)} loads (min {min(samples):.0f}, max {max(samples):.0f})"
        return Result(
            name=name,
            value=round(statistics.median(samples), 1),
            unit="ms",
            note=f"{spread}; {note}",
        )

    return [
        row("first contentful paint of /", paint, "fresh browser context each load"),
        row(
            "time until the chat is usable",
            usable,
            "navigation start → connected, agents/sessions/history loaded",
        ),
        Result(
            name="bytes transferred for /",
            value=float(transferred[-1]),
            unit="B",
            note="HTML, CSS, ES modules, favicon (uncompressed, no cache)",
        ),
        Result(
            name=f"render {MESSAGES:,} messages",
            value=round(big["rendered"], 1),
            unit="ms",
            note=f"markdown to DOM, layout and two frames; {big['nodes']:,} elements",
        ),
        Result(
            name=f"scroll through {MESSAGES:,} messages",
            value=round(big["scrolled"], 1),
            unit="ms",
            note="top, middle, bottom: one frame each (older messages skip layout off screen)",
        ),
        Result(
            name=f"open a {MESSAGES:,}-message session",
            value=round(paged["open"], 1),
            unit="ms",
            note="switch → its last 200 messages shown (chat.history tail-reads the transcript)",
        ),
        Result(
            name="load one earlier page (200 messages)",
            value=round(statistics.median(paged["pages"]), 1),
            unit="ms",
            note=f"median of {len(paged['pages'])} pages back to the first message, click → "
            f"shown, two frames (first {paged['pages'][0]:.0f} ms, last {paged['pages'][-1]:.0f}"
            f" ms: each reads back from the file's end); {paged['shown']:,} messages at the end",
        ),
        Result(
            name=f"scroll through {paged['shown']:,} paged-in messages",
            value=round(paged["scrolled"], 1),
            unit="ms",
            note="top, middle, bottom of the real session: one frame each",
        ),
    ]


def run() -> list[Result]:
    from tests.agents.gateway_agents import write_config
    from tests.ui.ui_helpers import CHROMIUM

    from gateway_harness import CORE_ONLY, start_gateway

    if not CHROMIUM.exists():
        raise RuntimeError(f"needs {CHROMIUM}")
    with fresh_home() as home:
        write_config(home, "main", {})
        asyncio.run(_seed(home / ".clawdbot-main", MESSAGES))
        gw = start_gateway(home, "main", env=CORE_ONLY)
        try:
            return asyncio.run(_measure(gw.http, gw.token))
        finally:
            gw.stop()


if __name__ == "__main__":
    for result in run():
        print(result)
