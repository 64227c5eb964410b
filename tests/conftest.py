"""Fixtures every test area shares.

- ``home`` (autouse): a fresh, empty HOME per test, and no inherited
  ``MOLTBOT_*``/``CLAWDBOT_*``/``OPENCLAW_*`` variables, so no test ever sees
  or touches the real ``~/.clawdbot*`` or another test's instance.
- ``run_moltbot(*args, env=None, input=None, timeout=60)``: the real CLI as a
  subprocess (``python -m moltbot``) in that HOME. ``env`` adds variables
  (``None`` removes one). Returns the ``CompletedProcess`` (text mode).
- ``free_port(span=1)``: the first of ``span`` consecutive loopback ports that
  are free right now (a gateway needs base, +2 and +4: use ``span=5``).
- ``browser``: real headless Chromium (Debian's ``tests/ui/ui_helpers.CHROMIUM``,
  through Playwright), closed after the test; modules that use it skip when it is
  not installed (``pytestmark``).
- ``llm``: the stand-in OpenAI-compatible model (``tests/fakes/llm_openai.py``),
  running, with the key ``sk-test`` that ``openai_config`` gives the gateway.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from gateway_harness import free_port_block

IDENTITY_PREFIXES = ("MOLTBOT_", "CLAWDBOT_", "OPENCLAW_")

RunMoltbot = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME (``<tmp_path>/home``) with no inherited instance identity."""
    real_home = Path.home()
    path = tmp_path / "home"
    path.mkdir()
    for name in list(os.environ):
        if name.startswith(IDENTITY_PREFIXES):
            monkeypatch.delenv(name)
    if "PLAYWRIGHT_BROWSERS_PATH" not in os.environ:  # browsers stay where they were installed
        monkeypatch.setenv("PLAYWRIGHT_BROWSERS_PATH", str(real_home / ".cache" / "ms-playwright"))
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(path))
    monkeypatch.setenv("USERPROFILE", str(path))
    monkeypatch.setenv("NO_COLOR", "1")
    return path


@pytest.fixture
def run_moltbot(home: Path) -> RunMoltbot:
    def run(
        *args: str,
        env: Mapping[str, str | None] | None = None,
        input: str | None = None,
        timeout: float = 60,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ)
        for name, value in (env or {}).items():
            if value is None:
                full_env.pop(name, None)
            else:
                full_env[name] = value
        return subprocess.run(
            [sys.executable, "-m", "moltbot", *args],
            env=full_env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd or home,
            check=False,
        )

    return run


@pytest.fixture
def free_port() -> Callable[..., int]:
    def find(span: int = 1, host: str = "127.0.0.1") -> int:
        return free_port_block(span, host)

    return find


@pytest.fixture
async def llm() -> AsyncIterator[Any]:
    from tests.fakes.llm_openai import FakeOpenAI

    async with FakeOpenAI(api_key="sk-test") as server:
        yield server


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright
    from tests.ui.ui_helpers import ARGS, CHROMIUM

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()
