"""service_facts / process_facts / port_owner / probe_health: separate facts, this profile only."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from shimtools import Shim

from moltbot.instance import Invocation, load, resolve_identity
from moltbot.instance.setup import setup_instance
from moltbot.service import get_manager
from moltbot.service.actions import install
from moltbot.service.inspect import port_owner, probe_health, process_facts, service_facts


def instance_for(home: Path, env: dict[str, str], profile: str | None):
    setup_instance(resolve_identity(Invocation(profile=profile), env, home), env)
    return load(Invocation(profile=profile), env, home)[0]


def test_facts_of_an_installed_running_service(home: Path, env, shim: Shim) -> None:
    main = instance_for(home, env, None)
    rescue = instance_for(home, env, "rescue")
    manager = get_manager(env, home)
    install(main, manager)
    install(rescue, manager)
    shim.clear_calls()
    facts = service_facts(rescue, env)
    assert facts["manager"] == "systemd" and facts["name"] == "moltbot-gateway-rescue.service"
    assert facts["installed"] and facts["current"] and facts["changes"] == []
    assert facts["available"] and facts["loaded"] and facts["running"]
    assert facts["runtime"]["pid"] == 4242
    assert facts["command"]["environment"]["CLAWDBOT_PROFILE"] == "rescue"
    assert not any("TOKEN" in k for k in facts["command"]["environment"])
    # only this profile's unit was asked about
    for call in shim.calls("systemctl"):
        assert "moltbot-gateway.service" not in call
    json.dumps(facts)  # JSON-ready


def test_facts_when_stale_or_without_a_manager(home: Path, env, shim: Shim) -> None:
    rescue = instance_for(home, env, "rescue")
    install(rescue, get_manager(env, home))
    unit = home / ".config" / "systemd" / "user" / "moltbot-gateway-rescue.service"
    unit.write_text(unit.read_text().replace(f"--port {rescue.port}", "--port 1234"))
    facts = service_facts(rescue, env)
    assert facts["current"] is False
    assert facts["changes"] == [f"port: 1234 -> {rescue.port}"]
    shim.no_bus()
    facts = service_facts(rescue, env)
    assert facts["installed"] and not facts["available"]
    assert "No medium found" in facts["unavailable"]
    assert facts["loaded"] is None and facts["running"] is None


def test_facts_not_installed(home: Path, env) -> None:
    facts = service_facts(instance_for(home, env, "rescue"), env)
    assert facts["installed"] is False and facts["current"] is None


def test_port_owner_and_stale_runtime_file(home: Path, env) -> None:
    rescue = instance_for(home, env, "rescue")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        owner = port_owner(port)
        assert owner is not None and owner["pid"] == os.getpid()
        rescue.runtime_file.write_text(json.dumps({"pid": 999999, "port": port}))
        facts = process_facts(rescue)
        assert facts["stale"] and not facts["alive"] and facts["pid"] is None
        assert facts["port"] == port and facts["portOwner"]["pid"] == os.getpid()
        assert facts["portOwnedByGateway"] is False
        health = probe_health(port, timeout=0.5)
        assert health["reachable"] is False or health["ok"] is False
    assert port_owner(port) is None
    assert probe_health(port, timeout=0.5)["reachable"] is False
