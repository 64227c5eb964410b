"""The Host page of a rescue instance (real gateways, no model): a sibling whose config
is broken is seen down, its config restored and the instance restarted from the page."""

from __future__ import annotations

import asyncio

import pytest
from tests.rescue.conftest import host  # noqa: F401 - the fixture
from tests.rescue.rescue_helpers import Host, audit, steps
from tests.ui.ui_helpers import CHROMIUM, open_ui

from gateway_harness import ws_client

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium")


async def test_a_broken_sibling_is_restored_and_restarted_from_the_host_page(
    browser,
    host: Host,  # noqa: F811
) -> None:
    host.write("main")
    host.write("rescue", {"rescue": {"targets": ["main"], "confirmSeconds": 60}})
    main = await asyncio.to_thread(host.start, "main")
    main_token = main.token
    rescue = await asyncio.to_thread(host.start, "rescue")
    await asyncio.to_thread(main.stop)
    host.break_config("main")
    assert await asyncio.to_thread(host.fail_to_start, "main") == 78

    context, page, errors = await open_ui(browser, rescue, "host")
    rows = page.locator("#page-host [data-table=instances] tbody tr")
    await rows.first.wait_for(timeout=30_000)
    assert await rows.count() == 2
    card = page.locator("#page-host section.card[data-target=main]")
    await card.wait_for()
    out = card.locator("pre.rescue-out")
    await page.wait_for_function(
        "() => (document.querySelector('[data-target=main] pre.rescue-out') || {})"
        ".textContent?.includes('DOWN')"
    )
    assert "last exit 78" in await out.text_content()

    page.on("dialog", lambda dialog: dialog.accept())  # the rescue's own confirmation
    await card.locator("button >> text=Restore").click()
    await page.wait_for_selector("#page-host .notice-line.ok >> text=Restored", timeout=60_000)
    await card.locator("button >> text=Restart").click()
    await page.wait_for_selector("#page-host .notice-line.ok >> text=Restarted", timeout=150_000)
    async with ws_client(f"ws://127.0.0.1:{host.ports['main']}", main_token) as client:
        assert (await client.call("health"))["ok"] is True
    results = steps(audit(host))
    assert ("config restore", "main", "applied") in results
    assert ("restart", "main", "applied") in results
    assert all(e["via"] == "protocol" for e in audit(host))
    assert errors == []
    await context.close()
