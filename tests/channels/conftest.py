"""Fixtures for channel tests: stand-in platforms, instances, a running ChannelManager."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.telegram import FakeTelegram  # noqa: E402


def write_config(home: Path, profile: str, data: dict[str, Any]) -> Path:
    state = home / (".clawdbot" if profile == "default" else f".clawdbot-{profile}")
    state.mkdir(parents=True, exist_ok=True)
    path = state / "moltbot.json"
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def load_instance(
    home: Path, profile: str = "default", env: dict[str, str] | None = None
) -> tuple[Any, Any]:
    from moltbot.instance import Invocation, load

    instance, snapshot = load(
        Invocation(profile=None if profile == "default" else profile), env or {}, home
    )
    return instance, snapshot.config


def subsystem_context(
    instance: Any,
    config: Any,
    env: dict[str, str] | None = None,
    lookup: Callable[[str], Any] | None = None,
) -> Any:
    from moltbot.gateway.subsystem import SubsystemContext

    return SubsystemContext(
        instance=instance,
        config=config,
        env=env or {},
        token=None,
        password=None,
        broadcast=lambda *a, **k: None,
        logger=logging.getLogger("moltbot.channels"),
        lookup=lookup or (lambda name: None),
    )


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def fast_backoff() -> Any:
    from moltbot.channels.manager import Backoff

    return Backoff(initial=0.05, factor=2.0, maximum=0.4, jitter=0.0, healthy_after=5.0)


StartManager = Callable[..., Awaitable[Any]]


@pytest.fixture
async def start_manager(home: Path, fast_backoff: Any) -> AsyncIterator[StartManager]:
    """``await start_manager(config_dict, profile=..., dispatcher=..., env=...)``: a
    running ChannelManager for that instance; stopped at the end of the test."""
    from moltbot.channels.manager import ChannelManager

    started: list[Any] = []

    async def start(
        data: dict[str, Any],
        *,
        profile: str = "default",
        dispatcher: Any = None,
        env: dict[str, str] | None = None,
        lookup: Callable[[str], Any] | None = None,
        wait: bool = True,
    ) -> Any:
        write_config(home, profile, data)
        instance, config = load_instance(home, profile, env)
        manager = ChannelManager(
            subsystem_context(instance, config, env, lookup),
            dispatcher=dispatcher,
            backoff=fast_backoff,
        )
        started.append(manager)
        await manager.start()
        if wait:
            await manager.wait_running(10)
        return manager

    yield start
    for manager in started:
        await manager.stop()


@pytest.fixture
async def fake_slack() -> AsyncIterator[Any]:
    from tests.fakes.slack import FakeSlack

    fake = FakeSlack()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
