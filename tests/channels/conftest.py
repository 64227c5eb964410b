"""Fixtures for channel tests: stand-in platforms, instances, a running ChannelManager."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.channels.channel_helpers import (  # noqa: E402
    load_instance,
    running,
    subsystem_context,
    write_config,
)
from tests.fakes.llm_openai import FakeOpenAI  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    async with running(FakeTelegram()) as fake:
        yield fake


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

    async with running(FakeSlack()) as fake:
        yield fake


@pytest.fixture
async def fake_discord() -> AsyncIterator[Any]:
    from tests.fakes.discord import FakeDiscord

    async with running(FakeDiscord()) as fake:
        yield fake


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One real Synapse homeserver for the whole run (it takes seconds to start);
    tests create their own users and rooms on it, so they never share state."""
    from tests.channels.synapse import start_synapse

    from gateway_harness import free_port_block

    server = start_synapse(tmp_path_factory.mktemp("synapse"), free_port_block(1))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def stack(home: Path, fast_backoff: Any) -> AsyncIterator[Any]:
    """``await stack(config)`` → (agents, channels): both subsystems, each finding the other."""
    from tests.channels.channel_helpers import load_instance, subsystem_context, write_config

    from moltbot.agents.runtime import AgentRuntime
    from moltbot.channels.manager import ChannelManager

    started: list[Any] = []

    async def make(config: dict[str, Any], profile: str = "default") -> tuple[Any, Any]:
        config.setdefault("agents", {}).setdefault("defaults", {}).setdefault(
            "workspace", str(home / f"clawd-{profile}")
        )
        write_config(home, profile, config)
        instance, cfg = load_instance(home, profile)
        subsystems: dict[str, Any] = {}
        env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
        agents = AgentRuntime(subsystem_context(instance, cfg, env, subsystems.get))
        channels = ChannelManager(
            subsystem_context(instance, cfg, env, subsystems.get), backoff=fast_backoff
        )
        subsystems.update(agents=agents, channels=channels)
        await agents.start()
        await channels.start()
        started.extend([channels, agents])
        await channels.wait_running(10)
        return agents, channels

    yield make
    for subsystem in started:
        await subsystem.stop()
