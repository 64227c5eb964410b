"""The HTTP-subsystem base: one lifecycle for every subsystem with its own port."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway_harness import free_port_block
from moltbot.config.schema import Config
from moltbot.errors import PortInUseError
from moltbot.instance import Invocation, resolve_identity, resolve_instance
from moltbot.lifecycle import HttpSubsystem, State, SubsystemContext


class Toy(HttpSubsystem):
    name = "toy"

    def __init__(self, context: SubsystemContext, port: int, off: str | None = None) -> None:
        super().__init__(context)
        self.port, self.off = port, off
        self.calls: list[str] = []

    def skipped(self) -> str | None:
        return self.off

    def address(self) -> tuple[str, int]:
        return "127.0.0.1", self.port

    def refusal(self, request: web.Request) -> web.StreamResponse | None:
        return web.Response(status=403) if "X-Refuse" in request.headers else None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=f"{self.state} {request.path}")

    async def prepare(self) -> None:
        self.calls.append("prepare")

    async def started(self) -> None:
        self.calls.append("started")

    async def closing(self) -> None:
        self.calls.append("closing")
        raise RuntimeError("a client would not close")  # logged, the stop goes on

    async def release(self) -> None:
        self.calls.append("release")


def context(home: Path) -> SubsystemContext:
    identity = resolve_identity(Invocation(profile="toy"), {}, home)
    instance = resolve_instance(identity, Config(), {})

    def ignore(*_: Any, **__: Any) -> None:
        return None

    return SubsystemContext(
        instance, Config(), {}, None, None, ignore, logging.getLogger("test.toy")
    )


async def test_start_serve_guard_stop(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    toy = Toy(context(home), free_port_block(1))
    await toy.start()
    assert toy.state == State.RUNNING and toy.calls == ["prepare", "started"]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{toy.port}/a/b") as response:
            assert response.status == 200 and await response.text() == "running /a/b"
        refused = {"X-Refuse": "1"}
        async with session.post(f"http://127.0.0.1:{toy.port}/", headers=refused) as response:
            assert response.status == 403
    with caplog.at_level(logging.WARNING, logger="test.toy"):
        await toy.stop()
    assert toy.state == State.STOPPED and toy.calls[2:] == ["closing", "release"]
    assert "a client would not close" in caplog.text
    with socket.socket() as probe:  # the port is free again
        probe.bind(("127.0.0.1", toy.port))
    await toy.stop()  # idempotent
    assert toy.calls[2:] == ["closing", "release"]


async def test_taken_port_fails_with_reason_and_releases(home: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        toy = Toy(context(home), holder.getsockname()[1])
        with pytest.raises(PortInUseError) as caught:
            await toy.start()
    assert toy.state == State.FAILED and toy.reason == caught.value.message
    assert f"toy port {toy.port} on 127.0.0.1 is already in use" == toy.reason
    assert toy.calls == ["prepare", "release"]


async def test_skipped_and_never_started(home: Path) -> None:
    off = Toy(context(home), 1, off="toy.enabled is false")
    await off.start()
    assert off.state == State.DISABLED and off.reason == "toy.enabled is false"
    await off.stop()
    assert off.state == State.DISABLED and off.calls == []
    never = Toy(context(home), 1)
    await never.stop()
    assert never.state == State.STOPPED and never.calls == []
