"""Subsystems are looked up by typed keys (moltbot/subsystems.py): one name per
subsystem, the gateway's lazy table agrees, and a lookup finds only what runs."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from moltbot.config.schema import Config
from moltbot.config.store import ConfigSnapshot
from moltbot.gateway.auth import AuthSettings
from moltbot.gateway.methods.registry import MethodTable
from moltbot.gateway.runtime import SUBSYSTEMS, GatewayRuntime
from moltbot.instance.resolve import Invocation, resolve_identity, resolve_instance
from moltbot.lifecycle import State
from moltbot.subsystems import AGENTS, BROWSER, CANVAS, CHANNELS, KEYS


def test_keys_name_the_gateways_subsystems() -> None:
    assert list(KEYS) == list(SUBSYSTEMS)  # same names, same start order
    for key in KEYS:
        module, _, name = SUBSYSTEMS[key].partition(":")
        cls = getattr(importlib.import_module(module), name)
        assert cls.name == key == key.name  # the class answers to its key
    assert {AGENTS, CHANNELS, BROWSER, CANVAS} == {"agents", "channels", "browser", "canvas"}


class Standin:
    """A subsystem in a given state (the lookup only reads ``state``)."""

    name = "canvas"

    def __init__(self, state: State) -> None:
        self.state = state

    def url(self, rel: str = "") -> str:
        return f"http://127.0.0.1:1/__moltbot__/canvas/{rel}"


def runtime(home: Path) -> GatewayRuntime:
    identity = resolve_identity(Invocation(profile="keys"), {}, home)
    instance = resolve_instance(identity, Config(), {})
    snapshot = ConfigSnapshot(instance.config_path, False, "", None, {}, Config())
    return GatewayRuntime(
        instance, snapshot, {}, AuthSettings("token", "t" * 32, None), MethodTable()
    )


def test_a_lookup_finds_only_a_running_subsystem(home: Path) -> None:
    gateway = runtime(home)
    assert gateway.subsystem(CANVAS) is None and gateway.registered(CANVAS) is None
    starting = Standin(State.STARTING)
    gateway.subsystems[CANVAS] = starting  # type: ignore[assignment]
    assert gateway.subsystem(CANVAS) is None and gateway.registered(CANVAS) is starting
    starting.state = State.RUNNING
    found: Any = gateway.subsystem(CANVAS)
    assert found is starting and found.url("x").endswith("/canvas/x")
    # other subsystems reach it through their context, by key or by name alike
    lookup = gateway.subsystem_context(AGENTS).lookup
    assert lookup(CANVAS) is starting and lookup("canvas") is starting
    assert lookup(BROWSER) is None
    starting.state = State.FAILED
    assert lookup(CANVAS) is None
