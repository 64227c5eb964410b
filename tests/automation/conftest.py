"""Fixtures for automation tests: the stand-in model and Telegram, and gateways on them."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.agents.gateway_agents import write_config  # noqa: E402
from tests.channels.channel_helpers import running  # noqa: E402
from tests.fakes.llm_openai import FakeOpenAI, openai_config  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402

from gateway_harness import GatewayProcess, start_gateway  # noqa: E402

BOT_TOKEN = "700:automation"
NO_EXTRAS = {"CLAWDBOT_SKIP_BROWSER_CONTROL_SERVER": "1", "CLAWDBOT_SKIP_CANVAS_HOST": "1"}


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    async with running(FakeTelegram()) as fake:
        yield fake


def telegram_config(llm: FakeOpenAI, telegram: FakeTelegram, **extra: Any) -> dict[str, Any]:
    """The stand-in model, and a Telegram bot on the stand-in Bot API."""
    config: dict[str, Any] = {
        **openai_config(llm.base_url),
        "channels": {
            "telegram": {"botToken": BOT_TOKEN, "apiRoot": telegram.url, "pollTimeoutSeconds": 1}
        },
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


@pytest.fixture
def launch(home: Path) -> Iterator[Any]:
    """``await launch(config)`` writes the config of profile ``main`` (unless ``None``:
    keep it, for a restart) and starts its gateway (channels on); all stopped at the end."""
    started: list[GatewayProcess] = []

    async def start(config: dict[str, Any] | None, env: dict[str, str] | None = None) -> Any:
        if config is not None:
            write_config(home, "main", config)
        gw = await asyncio.to_thread(start_gateway, home, "main", env={**NO_EXTRAS, **(env or {})})
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()
