"""No silent scaffolding: a subsystem, method family, HTTP route module or tool that
cannot be loaded is an error with its reason, never a quiet skip."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from tests.agents.gateway_agents import write_config

from moltbot.agents.tools import TOOLS
from moltbot.agents.tools.loading import load_tools
from moltbot.config.schema import Config
from moltbot.config.store import read_config
from moltbot.errors import MoltbotError
from moltbot.gateway import runtime as gateway_runtime
from moltbot.gateway import server
from moltbot.gateway.auth import resolve_auth
from moltbot.gateway.methods.registry import MethodTable, load_families
from moltbot.gateway.runtime import GatewayRuntime
from moltbot.instance import Invocation, resolve_identity, resolve_instance


def make_runtime(home: Path) -> GatewayRuntime:
    write_config(home, "main", {})
    env = {"HOME": str(home)}
    identity = resolve_identity(Invocation(profile="main"), env, home)
    snapshot = read_config(identity.config_path, env)
    instance = resolve_instance(identity, snapshot.config, env)
    return GatewayRuntime(
        instance, snapshot, env, resolve_auth(snapshot.config, env), MethodTable()
    )


async def test_subsystem_with_a_missing_module_is_failed_with_the_reason(
    home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(gateway_runtime.SUBSYSTEMS, "canvas", "moltbot.canvas.hots:CanvasHost")
    monkeypatch.setitem(gateway_runtime.SUBSYSTEMS, "browser", "moltbot.browser.service:Nope")
    runtime = make_runtime(home)
    with caplog.at_level(logging.ERROR, logger="moltbot.gateway"):
        await runtime.start_subsystem("canvas")
        await runtime.start_subsystem("browser")
    status = runtime.subsystem_status()
    assert status["canvas"]["state"] == "failed"
    assert "cannot import moltbot.canvas.hots" in status["canvas"]["error"]
    assert status["browser"] == {
        "state": "failed",
        "error": "subsystem browser: moltbot.browser.service has no Nope",
    }
    logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("canvas failed to start" in m and "moltbot.canvas.hots" in m for m in logged)


async def test_agents_fail_with_the_reason_when_a_tool_cannot_load(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(TOOLS, "read", "moltbot.agents.tools.fss:ReadTool")
    with pytest.raises(MoltbotError) as caught:
        load_tools(Config())
    assert caught.value.message.startswith("tool read: cannot import moltbot.agents.tools.fss")
    runtime = make_runtime(home)
    await runtime.start_subsystem("agents")
    try:
        agents = runtime.subsystem_status()["agents"]
        assert agents["state"] == "failed"
        assert "tool read: cannot import moltbot.agents.tools.fss" in agents["error"]
    finally:
        await runtime.stop_subsystems()


def test_tools_denied_by_policy_are_not_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TOOLS, "read", "moltbot.agents.tools.fss:ReadTool")
    tools = load_tools(Config.model_validate({"tools": {"deny": ["read"]}}))
    assert "read" not in tools and "write" in tools


def test_missing_method_family_or_route_module_stops_the_start(home: Path) -> None:
    with pytest.raises(MoltbotError) as caught:
        load_families(("moltbot.gateway.methods.system", "moltbot.gateway.methods.chats"))
    assert caught.value.message.startswith(
        "method family: cannot import moltbot.gateway.methods.chats"
    )
    runtime = make_runtime(home)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(server, "HTTP_ROUTE_MODULES", ("moltbot.gateway.http.openaii",))
        with pytest.raises(MoltbotError) as caught:
            server.build_app(runtime)
    assert "HTTP routes: cannot import moltbot.gateway.http.openaii" in caught.value.message
