"""Fixtures for the canvas tests: running canvas hosts (and browser services for the
tests that look at canvas pages in the real Chromium)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "browser"))

from browser_helpers import Made, kill_browsers_under  # noqa: E402

from moltbot.browser.service import BrowserService  # noqa: E402
from moltbot.canvas.host import CanvasHost  # noqa: E402

Start = Callable[..., Awaitable[Any]]


@pytest.fixture
async def canvas_host() -> AsyncIterator[Start]:
    """``await canvas_host(made)``: a started canvas host, stopped at teardown."""
    started: list[CanvasHost] = []

    async def start(made: Made, **overrides: Any) -> CanvasHost:
        host = CanvasHost(made.context(**overrides))
        started.append(host)
        await host.start()
        return host

    yield start
    for host in reversed(started):
        await host.stop()


@pytest.fixture
async def browser_service() -> AsyncIterator[Start]:
    started: list[BrowserService] = []

    async def start(made: Made, **overrides: Any) -> BrowserService:
        service = BrowserService(made.context(**overrides))
        started.append(service)
        await service.start()
        return service

    yield start
    for service in reversed(started):
        await service.stop()


@pytest.fixture(autouse=True)
def kill_leftover_browsers(home: Path) -> Iterator[None]:
    yield
    kill_browsers_under(home)
