"""The `moltbot browser` commands against one real gateway (text and JSON output)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import needs_chromium

from gateway_harness import GatewayProcess, start_gateway


@pytest.fixture
def gateway(home: Path) -> Any:
    gw: GatewayProcess | None = None
    try:
        gw = start_gateway(home, "work", env={"CLAWDBOT_SKIP_CHANNELS": "1"}, timeout=60)
        yield gw
    finally:
        if gw is not None:
            gw.stop(timeout=20)


def ok(run_moltbot: Any, *args: str) -> str:
    result = run_moltbot("--profile", "work", "browser", *args, timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


@needs_chromium
def test_profiles_tabs_and_actions_from_the_cli(
    home: Path, gateway: GatewayProcess, run_moltbot: Any
) -> None:
    root = home / "clawd-work" / "canvas"
    root.mkdir(parents=True, exist_ok=True)
    (root / "form.html").write_text(
        "<title>Form</title><h1>Start</h1><input aria-label='Query'>"
        "<script>document.querySelector('input').addEventListener('keydown', e => {"
        " if (e.key === 'Enter') { document.querySelector('h1').textContent = 'Sent ' +"
        " e.target.value; console.error('sent ' + e.target.value); } });</script>"
    )
    url = f"http://127.0.0.1:{gateway.port + 4}/__moltbot__/canvas/form.html"

    out = ok(run_moltbot, "create-profile", "research")
    assert out.startswith("created browser profile research (CDP port ")
    out = ok(run_moltbot, "profiles")
    assert "moltbot: stopped [default]" in out and "research: stopped" in out
    out = ok(run_moltbot, "--browser-profile", "research", "start")
    assert out.startswith("browser research: running (pid ")
    out = ok(run_moltbot, "navigate", url, "--browser-profile", "research")
    assert f"navigated: {url} (200)" in out and "title: Form" in out
    snap = json.loads(ok(run_moltbot, "--browser-profile", "research", "snapshot", "--json"))
    query = next(r for r, e in snap["refs"].items() if e.get("name") == "Query")
    assert ok(
        run_moltbot, "--browser-profile", "research", "type", query, "cats", "--submit"
    ).startswith("type ok")
    assert 'heading "Sent cats"' in ok(run_moltbot, "--browser-profile", "research", "snapshot")
    out = ok(run_moltbot, "--browser-profile", "research", "console", "--level", "error")
    assert "[error] sent cats" in out
    out = ok(run_moltbot, "--browser-profile", "research", "tabs")
    assert "1. Form" in out and url in out
    tab = json.loads(ok(run_moltbot, "--browser-profile", "research", "tabs", "--json"))["tabs"][0]
    out = ok(run_moltbot, "--browser-profile", "research", "focus", tab["targetId"][:8])
    assert out.strip() == f"focused: {tab['targetId']}"
    assert ok(run_moltbot, "--browser-profile", "research", "close").startswith("closed: ")
    out = ok(run_moltbot, "--browser-profile", "research", "stop")
    assert out.strip() == "browser research: stopped"
    out = ok(run_moltbot, "delete-profile", "research")
    assert out.startswith("deleted browser profile research")
    missing = run_moltbot("--profile", "work", "browser", "--browser-profile", "research", "tabs")
    assert missing.returncode == 9 and "not found" in missing.stderr
    bad = run_moltbot("--profile", "work", "browser", "create-profile", "Bad Name")
    assert bad.returncode == 2 and "invalid browser profile name" in bad.stderr


def test_help_has_examples(run_moltbot: Any) -> None:
    result = run_moltbot("browser", "--help")
    assert result.returncode == 0 and "moltbot --profile rescue browser status" in result.stdout
    for command in ("status", "start", "open", "snapshot", "click", "type", "screenshot"):
        result = run_moltbot("browser", command, "--help")
        assert result.returncode == 0 and "moltbot" in result.stdout.split("Example")[-1]
