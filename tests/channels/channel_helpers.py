"""Helpers shared by channel tests (the conftest's fixtures are built on them)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar


class _Server(Protocol):
    async def start(self) -> Any: ...

    async def stop(self) -> None: ...


Server = TypeVar("Server", bound=_Server)


@dataclass
class EchoDispatcher:
    """A tiny stand-in for the agents subsystem (routing/pairing unit tests only)."""

    reply: Callable[[str], str] = lambda text: f"echo: {text}"
    calls: list[dict[str, Any]] = field(default_factory=list)

    async def respond(
        self,
        agent_id: str,
        session_key: str,
        text: str,
        *,
        origin: Any = None,
        on_accepted: Callable[[], None] | None = None,
        media: Any = (),
    ) -> str:
        self.calls.append(
            {
                "agent_id": agent_id,
                "session_key": session_key,
                "text": text,
                "origin": origin,
                "media": tuple(media),
            }
        )
        if on_accepted is not None:
            on_accepted()
        return self.reply(text)

    def resolve_agent(self, agent_id: str | None) -> str:
        return agent_id or "main"


def config_path(home: Path, profile: str = "default") -> Path:
    state = home / (".clawdbot" if profile == "default" else f".clawdbot-{profile}")
    return state / "moltbot.json"


def write_config(home: Path, profile: str, data: dict[str, Any]) -> Path:
    path = config_path(home, profile)
    path.parent.mkdir(parents=True, exist_ok=True)
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
    from moltbot.lifecycle import SubsystemContext

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


@contextlib.asynccontextmanager
async def running(server: Server) -> AsyncIterator[Server]:
    """A stand-in server, started for the ``async with`` block."""
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def channels_status(manager: Any) -> dict[str, Any]:
    """The ``channels.status`` payload of a running ChannelManager, as the gateway shapes it."""
    from moltbot.gateway.channel_status import status_payload

    return status_payload(manager.report())


@contextlib.asynccontextmanager
async def serving_webhooks(manager: Any, port: int) -> AsyncIterator[None]:
    """Every channel's gateway webhook routes on ``127.0.0.1:port``, with ``manager``
    as the running ``channels`` subsystem."""
    from aiohttp import web

    from moltbot.channels.webhook import setup_routes
    from moltbot.subsystems import CHANNELS

    class Runtime:  # the one thing setup_routes needs from the gateway runtime
        async def started(self, key: Any) -> Any:
            return manager if key == CHANNELS else None

    app = web.Application()
    setup_routes(app, Runtime())
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield
    finally:
        await runner.cleanup()


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.02)


async def supervisor_ended(channel: str, timeout: float = 10.0) -> None:
    """Wait until no account supervisor of ``channel`` runs in this event loop (each
    account's supervisor task is named ``channel:<channel>:<account>``): after that
    nothing can retry or reconnect it."""
    prefix = f"channel:{channel}:"

    def ended() -> bool:
        return not any(
            t.get_name().startswith(prefix) and not t.done() for t in asyncio.all_tasks()
        )

    await wait_for(ended, timeout)


async def run_cli(run_moltbot: Any, *args: str, **kwargs: Any) -> Any:
    """The ``run_moltbot`` fixture in a thread: the stand-in servers live on this
    test's event loop."""
    return await asyncio.to_thread(run_moltbot, *args, **kwargs)
