"""Helpers shared by the browser and canvas tests (imported by both conftests).

The fixtures at the end are imported into both conftests: ``browser_service``,
``canvas_host`` and the autouse ``kill_leftover_browsers``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from gateway_harness import free_port_block
from moltbot.browser.service import BrowserService
from moltbot.canvas.host import CanvasHost
from moltbot.config.schema import Config
from moltbot.config.store import read_config
from moltbot.instance import Invocation, resolve_identity, resolve_instance
from moltbot.instance.bind import listen_host
from moltbot.instance.resolve import Instance
from moltbot.lifecycle import SubsystemContext

CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium")


@dataclass
class Made:
    instance: Instance
    config: Config
    token: str
    env: dict[str, str]

    def context(self, **overrides: Any) -> SubsystemContext:
        values: dict[str, Any] = {
            "instance": self.instance,
            "config": self.config,
            "env": self.env,
            "token": self.token,
            "password": None,
            "broadcast": lambda *a, **k: None,
            "logger": logging.getLogger(f"test.browser.{self.instance.profile}"),
            "bind_host": listen_host(self.instance.bind, self.config.gateway.custom_bind_host),
        }
        values.update(overrides)
        return SubsystemContext(**values)


def make_instance(
    home: Path,
    profile: str,
    base: int | None = None,
    config: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Made:
    """Write ``<home>/.clawdbot-<profile>/moltbot.json`` and resolve the instance."""
    base = base or free_port_block(5)
    identity = resolve_identity(Invocation(profile=profile), {}, home)
    identity.config_path.parent.mkdir(parents=True, exist_ok=True)
    token = f"token-{profile}-0123456789"
    data: dict[str, Any] = {"gateway": {"port": base, "auth": {"token": token}}}
    for key, value in (config or {}).items():
        data[key] = {**data.get(key, {}), **value}
    identity.config_path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    full_env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), **(env or {})}
    snapshot = read_config(identity.config_path, full_env)
    instance = resolve_instance(identity, snapshot.config, full_env)
    return Made(instance, snapshot.config, token, full_env)


def chromium_pids(home: Path) -> list[int]:
    """Chromium processes whose user-data dir lies in ``home``."""
    marker = f"--user-data-dir={home}"
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(arg.startswith(marker) for arg in proc.info["cmdline"] or ()):
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def kill_browsers_under(home: Path) -> None:
    for pid in chromium_pids(home):
        try:
            psutil.Process(pid).kill()
        except psutil.Error:
            continue


Start = Callable[..., Awaitable[Any]]


@contextlib.asynccontextmanager
async def started(cls: Callable[[SubsystemContext], Any]) -> AsyncIterator[Start]:
    """``await start(made, **overrides)``: a ``cls`` subsystem built from
    ``made.context(**overrides)`` and started; all are stopped on exit, last first."""
    subsystems: list[Any] = []

    async def start(made: Made, **overrides: Any) -> Any:
        subsystem = cls(made.context(**overrides))
        subsystems.append(subsystem)
        await subsystem.start()
        return subsystem

    yield start
    for subsystem in reversed(subsystems):
        await subsystem.stop()


@pytest.fixture
async def browser_service() -> AsyncIterator[Start]:
    """``await browser_service(made)``: a started service, stopped at teardown."""
    async with started(BrowserService) as start:
        yield start


@pytest.fixture
async def canvas_host() -> AsyncIterator[Start]:
    """``await canvas_host(made)``: a started canvas host, stopped at teardown."""
    async with started(CanvasHost) as start:
        yield start


@pytest.fixture(autouse=True)
def kill_leftover_browsers(home: Path) -> Iterator[None]:
    yield
    kill_browsers_under(home)
