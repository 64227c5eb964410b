"""The Host page shows every other instance's service-manager commands as text to copy
(real gateway, real CLI install through the recording systemctl stand-in of
tests/service); the page runs none of them."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.rescue.conftest import host  # noqa: F401 - the fixture
from tests.rescue.rescue_helpers import Host
from tests.ui.ui_helpers import CHROMIUM, open_ui

from gateway_harness import CORE_ONLY

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))

from shimtools import Shim  # noqa: E402

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium")

UNIT = "moltbot-gateway-main.service"


async def test_other_instances_service_commands_are_copyable(
    browser,
    host: Host,  # noqa: F811
    run_moltbot: Any,
    tmp_path: Path,
) -> None:
    shim = Shim(tmp_path / "bin")
    env = {"PATH": shim.path_env(), "CLAWDBOT_SERVICE_MANAGER": "systemd"}
    for profile in ("main", "ops", "spare"):
        host.write(profile)
    installed = run_moltbot("--profile", "main", "gateway", "install", env=env)
    assert installed.returncode == 0, installed.stderr
    ops = await asyncio.to_thread(host.start, "ops", {**CORE_ONLY, **env})

    context, page, errors = await open_ui(browser, ops, "host")
    await context.grant_permissions(["clipboard-read", "clipboard-write"])
    section = page.locator("#page-host section[data-commands]")
    await section.locator(".commands").first.wait_for(timeout=30_000)
    profiles = await section.locator(".commands").evaluate_all(
        "els => els.map(e => e.dataset.profile)"
    )
    assert sorted(profiles) == ["main", "spare"]  # not the instance itself

    main = section.locator(".commands[data-profile=main]")
    commands = {
        await dd.get_attribute("data-action"): await dd.locator("code").text_content()
        for dd in await main.locator("dd").all()
    }
    assert commands == {
        "start": f"systemctl --user start {UNIT}",
        "stop": f"systemctl --user stop {UNIT}",
        "restart": f"systemctl --user restart {UNIT}",
        "logs": f"journalctl --user -u {UNIT} -n 200 --no-pager",
    }
    spare = section.locator(".commands[data-profile=spare] dd[data-action=install] code")
    assert await spare.text_content() == "moltbot --profile spare gateway install"

    shim.clear_calls()
    copy = main.locator("dd[data-action=restart] button.copy")
    await copy.focus()  # keyboard reachable
    await page.keyboard.press("Enter")
    await page.wait_for_function(
        "() => document.querySelector("
        "'#page-host [data-profile=main] dd[data-action=restart] button.copy')"
        ".textContent === 'Copied'"
    )
    assert await page.evaluate("navigator.clipboard.readText()") == (
        f"systemctl --user restart {UNIT}"
    )
    # showing and copying ran nothing: the stand-in saw no restart
    assert ["systemctl", "--user", "restart", UNIT] not in shim.calls("systemctl")
    assert errors == []
    await context.close()
