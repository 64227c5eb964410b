"""End to end: two real gateways (main, rescue), each with its browser and canvas,
driven from the real CLI and over the gateway WebSocket."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
from browser_helpers import chromium_pids, needs_chromium

from gateway_harness import GatewayProcess, MethodFailed, start_gateway, ws_client

SIDECARS_ON = {"CLAWDBOT_SKIP_CHANNELS": "1"}


def cli_json(run_moltbot: Any, *args: str) -> Any:
    result = run_moltbot(*args, "--json", timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def wait_reachable(run_moltbot: Any, profile: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = cli_json(run_moltbot, "--profile", profile, "browser", "status")
        if status["reachable"]:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def fetch(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


@pytest.fixture
def two_gateways(home: Path) -> Any:
    started: list[GatewayProcess] = []
    try:
        started.append(start_gateway(home, "main", env=SIDECARS_ON, timeout=60))
        started.append(start_gateway(home, "rescue", env=SIDECARS_ON, timeout=60))
        yield started
    finally:
        for gateway in started:
            gateway.stop(timeout=20)


@needs_chromium
async def test_two_gateways_browsers_and_canvases(
    home: Path, two_gateways: list[GatewayProcess], run_moltbot: Any
) -> None:
    main, rescue = two_gateways
    views = {}
    for gateway in (main, rescue):
        status = wait_reachable(run_moltbot, gateway.profile or "default")
        assert status["instance"] == gateway.profile
        assert status["controlPort"] == gateway.port + 2
        assert status["cdpRange"] == [gateway.port + 11, gateway.port + 110]
        assert gateway.port + 11 <= status["cdpPort"] <= gateway.port + 110
        views[gateway.profile] = status

    # Each instance starts its own browser, from the CLI.
    started = {}
    for gateway in (main, rescue):
        data = cli_json(run_moltbot, "--profile", gateway.profile, "browser", "start")
        assert data["running"] and data["cdpPort"] == views[gateway.profile]["cdpPort"]
        started[gateway.profile] = data
    assert started["main"]["pid"] != started["rescue"]["pid"]
    assert started["main"]["cdpPort"] != started["rescue"]["cdpPort"]
    text = run_moltbot("--profile", "rescue", "browser", "status").stdout
    assert f"http://127.0.0.1:{rescue.port + 2}  reachable" in text
    assert f"cdpPort {started['rescue']['cdpPort']}, running" in text

    # Each canvas is served by its own gateway on base+4.
    for gateway in (main, rescue):
        root = home / f"clawd-{gateway.profile}" / "canvas"
        root.mkdir(parents=True, exist_ok=True)
        (root / "index.html").write_text(
            f"<title>{gateway.profile}</title><h1>Canvas of {gateway.profile}</h1>"
            "<button onclick=\"document.querySelector('h1').textContent='pressed'\">Go</button>"
        )
    for gateway in (main, rescue):
        status, body = fetch(f"http://127.0.0.1:{gateway.port + 4}/__moltbot__/canvas/")
        assert status == 200 and f"Canvas of {gateway.profile}" in body

    # Drive rescue's browser from the CLI: open, snapshot, click, screenshot.
    url = f"http://127.0.0.1:{rescue.port + 4}/__moltbot__/canvas/"
    opened = cli_json(run_moltbot, "--profile", "rescue", "browser", "open", url)
    snapshot = cli_json(run_moltbot, "--profile", "rescue", "browser", "snapshot")
    assert 'heading "Canvas of rescue"' in snapshot["snapshot"]
    ref = next(r for r, e in snapshot["refs"].items() if e == {"role": "button", "name": "Go"})
    result = run_moltbot("--profile", "rescue", "browser", "click", ref)
    assert result.returncode == 0, result.stderr
    after = run_moltbot("--profile", "rescue", "browser", "snapshot")
    assert 'heading "pressed"' in after.stdout
    shot = home / "rescue.png"
    result = run_moltbot("--profile", "rescue", "browser", "screenshot", "--out", str(shot))
    assert result.returncode == 0 and shot.read_bytes()[:4] == b"\x89PNG"
    tabs = cli_json(run_moltbot, "--profile", "rescue", "browser", "tabs")
    assert opened["targetId"] in [t["targetId"] for t in tabs["tabs"]]
    main_tabs = cli_json(run_moltbot, "--profile", "main", "browser", "tabs")
    assert opened["targetId"] not in [t["targetId"] for t in main_tabs["tabs"]]

    # The same routes over the gateway WebSocket (browser.request).
    async with ws_client(rescue.url, rescue.token) as client:
        assert "browser.request" in client.hello["features"]["methods"]
        payload = await client.call("browser.request", {"method": "GET", "path": "/tabs"})
        assert any(t["url"] == url for t in payload["tabs"])
        with pytest.raises(MethodFailed) as caught:
            await client.call(
                "browser.request",
                {"method": "POST", "path": "/profiles/create", "body": {"name": "Bad Name"}},
            )
        assert caught.value.error["code"] == "INVALID_REQUEST"
        assert caught.value.error["details"]["status"] == 400

    # A wrong token is refused with exit 7; stopping the gateways kills their browsers.
    result = run_moltbot("--profile", "rescue", "browser", "tabs", "--token", "wrong")
    assert result.returncode == 7 and "401" in result.stderr
    for gateway in (main, rescue):
        assert gateway.stop(timeout=20) == 0
    deadline = time.monotonic() + 10
    while chromium_pids(home):
        assert time.monotonic() < deadline, chromium_pids(home)
        time.sleep(0.2)
    assert not psutil.pid_exists(started["main"]["pid"])


def test_status_without_gateway_shows_configured_facts(home: Path, run_moltbot: Any) -> None:
    setup = run_moltbot("--profile", "rescue", "setup", "--port", "19789", "--json")
    assert setup.returncode == 0, setup.stderr
    result = run_moltbot("--profile", "rescue", "browser", "status")
    assert result.returncode == 0, result.stderr
    assert "http://127.0.0.1:19791  not reachable: the gateway is not running" in result.stdout
    assert "CDP range      19800-19899" in result.stdout
    assert "moltbot --profile rescue gateway" in result.stdout
    data = cli_json(run_moltbot, "--profile", "rescue", "browser", "status")
    assert data["reachable"] is False and data["gateway"] == "not running"
    assert data["controlPort"] == 19791 and data["cdpRange"] == [19800, 19899]
    assert data["profiles"][0]["name"] == "moltbot"
    result = run_moltbot("--profile", "rescue", "browser", "start")
    assert result.returncode == 6
    assert "nothing answers on http://127.0.0.1:19791" in result.stderr
    assert "gateway" in result.stderr
