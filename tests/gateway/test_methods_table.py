"""The method table: every method's name is known up front (``hello-ok`` lists them),
its family is imported at its first call, and a family that cannot be imported
answers that call with the error (the connection goes on)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import pytest
from aiohttp import web
from test_footprint import imported_modules

from gateway_harness import CORE_ONLY, MethodFailed, free_port_block, start_gateway, ws_client
from moltbot.config.schema import Config
from moltbot.config.store import ConfigSnapshot
from moltbot.errors import MoltbotError
from moltbot.gateway import server
from moltbot.gateway.auth import AuthSettings
from moltbot.gateway.methods.registry import DECLARED, UNADVERTISED, MethodTable, load_families
from moltbot.gateway.runtime import GatewayRuntime
from moltbot.instance.resolve import Invocation, resolve_identity, resolve_instance
from moltbot.lifecycle import State

TOKEN = "t" * 32


def test_the_table_names_what_each_family_declares() -> None:
    declared: dict[str, set[str]] = defaultdict(set)
    for name, spec in load_families().items():
        declared[spec.handler.__module__.rsplit(".", 1)[1]].add(name)
    assert {family: set(names) for family, names in DECLARED.items()} == declared
    assert UNADVERTISED == {name for name, spec in load_families().items() if not spec.advertise}
    advertised = sorted(name for name, spec in load_families().items() if spec.advertise)
    assert MethodTable().advertised == advertised


async def test_a_family_that_cannot_be_imported_fails_its_first_call() -> None:
    table = MethodTable({"chats": ("chats.list",), "host": ("host.status", "host.nope")})
    with pytest.raises(MoltbotError) as caught:
        await table.load("chats.list")
    assert caught.value.message.startswith(
        "method family: cannot import moltbot.gateway.methods.chats"
    )
    with pytest.raises(MoltbotError, match="method family host does not declare host.nope"):
        await table.load("host.nope")
    assert (await table.load("host.status")).name == "host.status"


async def test_the_error_answers_the_request_and_the_connection_goes_on(home: Path) -> None:
    identity = resolve_identity(Invocation(profile="methods"), {}, home)
    instance = resolve_instance(identity, Config(), {})
    snapshot = ConfigSnapshot(instance.config_path, False, "", None, {}, Config())
    methods = MethodTable({"chats": ("chats.list",), "system": ("health", "status")})
    runtime = GatewayRuntime(instance, snapshot, {}, AuthSettings("token", TOKEN, None), methods)
    runtime.state = State.RUNNING
    runtime.subsystems_started.set()
    runner = web.AppRunner(server.build_app(runtime), access_log=None)
    await runner.setup()
    port = free_port_block(1)
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with ws_client(f"ws://127.0.0.1:{port}", TOKEN) as client:
            assert client.hello["features"]["methods"] == ["chats.list", "health", "status"]
            with pytest.raises(MethodFailed) as failed:
                await client.call("chats.list")
            assert "cannot import moltbot.gateway.methods.chats" in failed.value.error["message"]
            with pytest.raises(MethodFailed, match="unknown method: cron.list"):
                await client.call("cron.list")  # not in this table: unknown, as ever
            assert (await client.call("health"))["ok"] is True
    finally:
        await runner.cleanup()


async def test_an_idle_gateway_imports_a_family_at_its_first_call(home: Path) -> None:
    gw = start_gateway(home, "main", env={"PYTHONPROFILEIMPORTTIME": "1"})
    try:
        async with ws_client(gw.url, gw.token) as client:
            assert client.hello["features"]["methods"] == MethodTable().advertised
            await client.call("sessions.list")  # once the sidecars have started
            # the config family imports moltbot.config.isolated (nothing else at idle does)
            assert "moltbot.config.isolated" not in imported_modules(gw.output())
            config = await client.call("config.get")
            assert config["valid"] is True
            assert "moltbot.config.isolated" in imported_modules(gw.output())
            # a node-only method is refused to an operator once its family is imported
            with pytest.raises(MethodFailed, match="unauthorized role: operator"):
                await client.call("node.invoke.result", {"id": "x", "nodeId": "n", "ok": True})
    finally:
        gw.stop()


async def test_first_calls_are_refused_as_later_ones(home: Path) -> None:
    """Many first calls at once, to one family and to every family, from a read-only
    operator: each is refused (or answered) exactly as the same call once its family is
    imported, and the connection goes on."""
    names = [n for family in DECLARED.values() for n in family if n != "update.run"]
    gw = start_gateway(home, "main", env=CORE_ONLY)
    try:
        async with ws_client(gw.url, gw.token, scopes=["operator.read"]) as client:

            async def answers() -> list[tuple[bool, str | None]]:
                frames = await asyncio.gather(*(client.request(n, timeout=60) for n in names * 2))
                return [(f["ok"], (f.get("error") or {}).get("message")) for f in frames]

            first, later = await answers(), await answers()
            assert first == later
            refused = dict(zip(names, first, strict=False))
            assert refused["config.set"] == (False, "missing scope: operator.admin")
            assert refused["node.event"] == (False, "unauthorized role: operator")
            assert refused["health"][0] is True
            assert (await client.call("health"))["ok"] is True
    finally:
        gw.stop()


async def test_first_calls_of_one_family_import_it_once_and_run_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Calls that arrive while their family is being imported share that import and go
    on in the order they came (each import here takes less time than the one before)."""
    import itertools
    import time

    from moltbot.gateway.methods import registry

    delays = itertools.count(3, -1)
    imports: list[str] = []
    load = registry.load

    def slow_load(module: str, what: str) -> object:
        imports.append(module)
        time.sleep(next(delays) / 10)
        return load(module, what)

    monkeypatch.setattr(registry, "load", slow_load)
    table = MethodTable({"system": ("health", "status")})
    assert table.get("health") is None
    order: list[int] = []

    async def first_call(n: int) -> None:
        await table.load("health")
        order.append(n)

    await asyncio.gather(*(first_call(n) for n in range(3)))
    assert order == [0, 1, 2]
    assert imports == ["moltbot.gateway.methods.system"]
    assert table.get("health") is not None and table.get("status") is not None
