"""The service commands shown to copy (the Host page, ``host.status``) are the ones the
manager itself runs to stop and restart a loaded service: checked against the
recording stand-ins of systemctl, launchctl and schtasks."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from shimtools import Shim

from moltbot.instance import Invocation, resolve_identity
from moltbot.instance.setup import setup_instance
from moltbot.service import build_spec, get_manager


@pytest.mark.parametrize("name", ["systemd", "launchd", "schtasks"])
def test_stop_and_restart_commands_are_what_the_manager_runs(
    name: str, home: Path, shim: Shim, env: dict[str, str]
) -> None:
    identity_env = {"HOME": str(home)}
    instance = setup_instance(
        resolve_identity(Invocation(profile="ops"), identity_env, home), identity_env
    ).instance
    manager = get_manager({**env, "CLAWDBOT_SERVICE_MANAGER": name}, home, name)
    spec = build_spec(instance, platform=manager.platform)
    for path, content in manager.files(spec).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    manager.activate(spec)
    tool = {"systemd": "systemctl", "launchd": "launchctl", "schtasks": "schtasks"}[name]

    shim.clear_calls()
    manager.restart(spec)
    shown = manager.restart_command(spec)
    parts = shown.split(" & ")  # schtasks: two commands for cmd.exe
    ran = shim.calls(tool)
    for part in parts:
        assert shlex.split(part) in ran, (part, ran)

    shim.clear_calls()
    manager.stop(spec)
    assert shlex.split(manager.stop_command(spec)) in shim.calls(tool)
