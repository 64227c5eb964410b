"""Fixtures for rescue tests (see :mod:`tests.rescue.rescue_helpers`)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.channels.channel_helpers import running  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402
from tests.rescue.rescue_helpers import Host  # noqa: E402


@pytest.fixture
def host(home: Path) -> Iterator[Host]:
    """Instances on this test's HOME; every gateway of them is stopped at the end."""
    made = Host(home)
    try:
        yield made
    finally:
        made.stop_everything()


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    async with running(FakeTelegram()) as fake:
        yield fake
