"""The WebChat page in real headless Chromium against a real gateway and a stand-in model."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.agents.gateway_agents import start
from tests.fakes.llm_openai import FakeOpenAI
from tests.fakes.llm_openai import openai_config as fake_provider
from tests.fakes.llm_script import Reply

from gateway_harness import CORE_ONLY, start_gateway

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture
async def llm():
    async with FakeOpenAI(api_key="sk-test") as server:
        yield server


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def gateway(home, llm):
    gw = start(home, fake_provider(llm.base_url))
    holder = {"gw": gw}
    yield holder
    holder["gw"].stop()


async def open_chat(browser, gw, fragment=True):
    context = await browser.new_context()
    page = await context.new_page()
    url = f"{gw.http}/#token={gw.token}" if fragment else gw.http
    await page.goto(url)
    await page.wait_for_selector("body[data-conn=connected]", timeout=15_000)
    await page.wait_for_selector("body[data-history]")
    return context, page


async def send(page, text):
    await page.fill("#input", text)
    await page.press("#input", "Enter")


def last_assistant(page):
    return page.locator(".msg.assistant").last


async def test_chat_streams_tools_and_sessions(browser, gateway, llm):
    gw = gateway["gw"]
    context, page = await open_chat(browser, gw)
    assert await page.evaluate("location.hash") == ""
    assert await page.evaluate("localStorage.getItem('moltbot.gatewayToken')") == gw.token
    assert await page.text_content("#agent-name") == "Molty"
    # the instance panel shows this gateway's own profile and ports
    await page.wait_for_selector("#instance-facts dd[data-fact=profile]", state="attached")
    assert await page.text_content("#instance-title") == f"main · port {gw.port}"
    ports = await page.text_content("#instance-facts dd[data-fact=ports]")
    assert ports == f"{gw.port} · browser {gw.port + 2} · canvas {gw.port + 4}"

    final = "Hello from the stand-in model, one chunk at a time."
    llm.push(Reply(final, chunk_chars=4, chunk_delay=0.06))
    await send(page, "hi there")
    await page.wait_for_selector(".msg.user >> text=hi there")
    await page.wait_for_selector(".msg.assistant.streaming")
    partial = await last_assistant(page).locator(".text").text_content()
    assert partial and len(partial) < len(final) and final.startswith(partial)
    assert await page.is_enabled("#stop")
    await page.wait_for_selector(".msg.assistant[data-state=final]")
    assert await last_assistant(page).locator(".text").text_content() == final
    assert not await page.is_enabled("#stop")

    llm.push(
        Reply("Writing it down.", tool_calls=[("write", {"path": "list.md", "content": "milk"})]),
        Reply("Done: list.md has milk."),
    )
    await send(page, "write my list")
    await page.wait_for_selector(".msg.assistant[data-state=final] >> text=Done: list.md")
    tool = page.locator("details.tool").last
    assert await tool.get_attribute("data-tool") == "write"
    assert await tool.get_attribute("data-state") == "done"
    assert await tool.evaluate("el => el.open") is False  # collapsed
    assert not await tool.locator("pre.result").is_visible()
    await tool.locator("summary").click()
    assert await tool.locator("pre.result").is_visible()
    assert "Wrote 4 bytes" in await tool.locator("pre.result").text_content()
    assert '"path": "list.md"' in await tool.locator("pre.args").text_content()

    await page.wait_for_selector(".session .title >> text=hi there")
    await page.click("#new-chat")
    await send(page, "a separate topic")
    await page.wait_for_selector(".msg.assistant[data-state=final] >> text=echo: a separate topic")
    await page.wait_for_selector(".session .title >> text=a separate topic")
    assert await page.locator(".session").count() == 2
    await page.click(".session >> text=hi there")
    await page.wait_for_selector(".msg.user >> text=write my list")
    assert await page.locator(".msg.user").count() == 2
    # history after a reload: the tool call is rebuilt collapsed from the transcript
    await page.reload()
    await page.wait_for_selector("body[data-conn=connected]")
    await page.wait_for_selector("details.tool[data-state=done]")
    assert await page.locator(".msg.assistant").count() == 2
    await context.close()


async def test_abort_button(browser, gateway, llm):
    gw = gateway["gw"]
    context, page = await open_chat(browser, gw)
    llm.push(Reply("blah " * 500, chunk_chars=5, chunk_delay=0.03))
    await send(page, "talk forever")
    await page.wait_for_selector(".msg.assistant.streaming")
    await page.click("#stop")
    await page.wait_for_selector(".msg.assistant[data-state=aborted]", timeout=5000)
    assert await last_assistant(page).locator(".status").text_content() == "Stopped"
    await send(page, "still there?")
    await page.wait_for_selector(".msg.assistant[data-state=final] >> text=echo: still there?")
    await context.close()


async def test_reconnects_after_gateway_restart(browser, gateway, llm, home):
    gw = gateway["gw"]
    context, page = await open_chat(browser, gw)
    await send(page, "before restart")
    await page.wait_for_selector(".msg.assistant[data-state=final] >> text=echo: before restart")
    gw.stop()
    await page.wait_for_selector("body[data-conn=reconnecting]", timeout=10_000)
    assert await page.is_visible("#banner")
    restarted = start_gateway(home, "main", port=gw.port, env=CORE_ONLY)
    gateway["gw"] = restarted
    await page.wait_for_selector("body[data-conn=connected]", timeout=20_000)
    assert not await page.is_visible("#banner")
    await page.wait_for_selector(".msg.user >> text=before restart")
    await send(page, "after restart")
    await page.wait_for_selector(".msg.assistant[data-state=final] >> text=echo: after restart")
    await context.close()


async def test_token_once_and_never_from_the_query(browser, gateway):
    gw = gateway["gw"]
    context, page = await open_chat(browser, gw)
    second = await context.new_page()  # same browser profile: the token is remembered
    await second.goto(gw.http)
    await second.wait_for_selector("body[data-conn=connected]")
    await context.close()

    fresh = await browser.new_context()
    page = await fresh.new_page()
    await page.goto(f"{gw.http}/?token={gw.token}")
    await page.wait_for_selector("#token-dialog[open]")
    assert await page.get_attribute("body", "data-conn") == "unauthorized"
    await page.fill("#token-input", "wrong-token")
    await page.click("#token-dialog button[type=submit]")
    await page.wait_for_selector("#token-error:not([hidden])")
    assert "refused" in await page.text_content("#token-error")
    await page.fill("#token-input", gw.token)
    await page.click("#token-dialog button[type=submit]")
    await page.wait_for_selector("body[data-conn=connected]")
    assert await page.evaluate("localStorage.getItem('moltbot.gatewayToken')") == gw.token
    await fresh.close()


async def test_view_follows_a_reply_that_lands_in_one_piece(browser, gateway, llm):
    """The reader at the bottom sees the reply, however tall its first piece is."""
    gw = gateway["gw"]
    context, page = await open_chat(browser, gw)
    await page.set_viewport_size({"width": 700, "height": 420})
    long_line = "A long answer. " * 300  # far taller than the viewport, in one chunk
    llm.push(Reply(long_line, chunk_chars=len(long_line)))
    await send(page, "tell me everything")
    await page.wait_for_selector(".msg.assistant[data-state=final]")
    gap = "el => el.scrollHeight - el.scrollTop - el.clientHeight"
    await page.wait_for_function(f"({gap})(document.getElementById('messages')) < 2")
    assert await last_assistant(page).locator(".text").is_visible()

    await context.close()


async def test_title_and_favicon(browser, gateway):
    gw = gateway["gw"]
    context, page = await open_chat(browser, gw)
    await page.wait_for_selector("#instance-facts dd[data-fact=profile]", state="attached")
    assert await page.title() == "Moltbot (main)"
    icon = await page.get_attribute("link[rel=icon]", "href")
    for path in (icon, "/favicon.ico"):
        response = await page.request.get(f"{gw.http}/{path.lstrip('/')}")
        assert response.status == 200 and b"<svg" in await response.body()
    await context.close()


async def test_attach_an_image_and_see_it_in_history(browser, home, llm, tmp_path):
    from tests.fakes.media import png

    config = fake_provider(llm.base_url)
    config["models"]["providers"]["fake"]["models"] = [{"id": "m1", "input": ["text", "image"]}]
    gw = start(home, config)
    try:
        context, page = await open_chat(browser, gw)
        picture = tmp_path / "plot.png"
        picture.write_bytes(png(12, 8, (255, 0, 255)))
        await page.set_input_files("#file-input", str(picture))
        await page.wait_for_selector("#attachments .chip img")
        assert await page.is_enabled("#send")  # an image alone may be sent
        llm.push(Reply("A magenta rectangle."))
        await send(page, "what is this?")
        await page.wait_for_selector(
            ".msg.assistant[data-state=final] >> text=A magenta rectangle."
        )
        assert await page.locator("#attachments .chip").count() == 0
        content = llm.requests[0]["body"]["messages"][-1]["content"]
        assert [part["type"] for part in content] == ["text", "image_url"]
        # after a reload the image comes back from the transcript through its signed URL
        await page.reload()
        await page.wait_for_selector("body[data-history]")
        image = page.locator(".msg.user img.attachment")
        await image.wait_for()
        src = await image.get_attribute("src")
        assert src.startswith("/__moltbot__/media/main/")
        await page.wait_for_function(
            "() => { const i = document.querySelector('.msg.user img.attachment');"
            " return i && i.complete && i.naturalWidth > 0; }"
        )
        size = await image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert size == [12, 8]
        await context.close()
    finally:
        gw.stop()
