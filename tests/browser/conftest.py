"""Fixtures for the browser tests.

Every test here that launches Chromium uses the real Debian ``/usr/bin/chromium``;
``kill_leftover_browsers`` (autouse) kills any Chromium whose user-data dir lies
in the test's HOME, whatever happened in the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import Made, kill_browsers_under

from moltbot.browser.service import BrowserService

StartService = Callable[..., Awaitable[BrowserService]]


@pytest.fixture
async def browser_service() -> AsyncIterator[StartService]:
    """``await browser_service(made)``: a started service, stopped at teardown."""
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
