"""install / uninstall / start / stop / restart against the recording shims."""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pytest
from shimtools import Shim

from moltbot.instance import Invocation, resolve_identity
from moltbot.instance.setup import setup_instance

USER = pwd.getpwuid(os.getuid()).pw_name


def unit_dir(home: Path) -> Path:
    return home / ".config" / "systemd" / "user"


@pytest.fixture
def instances(home: Path, env: dict[str, str]) -> dict[str, object]:
    out = {}
    for profile in (None, "rescue"):
        identity = resolve_identity(Invocation(profile=profile), env, home)
        out[profile or "default"] = setup_instance(identity, env).instance
    return out


def test_install_runs_exact_systemctl_sequence(
    run_service, shim: Shim, home: Path, instances
) -> None:
    result = run_service("install", profile="rescue")
    assert result.exit_code == 0, result.output
    unit = "moltbot-gateway-rescue.service"
    assert (unit_dir(home) / unit).is_file()
    assert shim.calls("systemctl") == [
        ["systemctl", "--user", "show", "--property=Version"],
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", unit],
        ["systemctl", "--user", "restart", unit],
    ]
    assert shim.calls("loginctl") == [
        ["loginctl", "show-user", USER, "--property=Linger", "--value"]
    ]
    assert "lingering is off" in result.stderr and "loginctl enable-linger" in result.stderr
    assert shim.state["units"][unit] == {"enabled": True, "active": True}
    # the default profile's unit was never touched
    assert not (unit_dir(home) / "moltbot-gateway.service").exists()
    assert all("moltbot-gateway.service" not in call for call in shim.calls())


def test_install_is_idempotent_and_force_rewrites(
    run_service, shim: Shim, home: Path, instances
) -> None:
    assert run_service("install").exit_code == 0
    path = unit_dir(home) / "moltbot-gateway.service"
    mtime = path.stat().st_mtime_ns
    shim.clear_calls()
    again = run_service("install", "--json")
    assert again.exit_code == 0, again.output
    data = json.loads(again.stdout)
    assert data["result"] == "unchanged"
    assert path.stat().st_mtime_ns == mtime
    writes = [c for c in shim.calls("systemctl") if c[2] in ("daemon-reload", "enable", "restart")]
    assert writes == []
    forced = run_service("install", "--force", "--json")
    assert json.loads(forced.stdout)["result"] == "reinstalled"
    assert ["systemctl", "--user", "restart", "moltbot-gateway.service"] in shim.calls()


def test_changed_port_is_reported_and_needs_force(
    run_service, shim: Shim, home: Path, instances, env
) -> None:
    assert run_service("install", profile="rescue").exit_code == 0
    rescue = instances["rescue"]
    new_port = rescue.port + 500
    config = json.loads(rescue.config_path.read_text())
    config["gateway"]["port"] = new_port
    rescue.config_path.write_text(json.dumps(config))
    result = run_service("install", profile="rescue")
    assert result.exit_code == 3
    assert f"port: {rescue.port} -> {new_port}" in result.error.message
    assert "gateway install --force" in result.error.hint
    forced = run_service("install", "--force", profile="rescue")
    assert forced.exit_code == 0, forced.output
    assert f"port: {rescue.port} -> {new_port}" in forced.stdout
    text = (unit_dir(home) / "moltbot-gateway-rescue.service").read_text()
    assert f"--port {new_port}" in text


def test_changed_interpreter_is_detected(run_service, home: Path, instances) -> None:
    assert run_service("install").exit_code == 0
    path = unit_dir(home) / "moltbot-gateway.service"
    text = path.read_text()
    first = text.split("ExecStart=")[1].split()[0]
    path.write_text(text.replace(first, "/opt/old/venv/bin/python"))
    result = run_service("install")
    assert result.exit_code == 3
    assert "interpreter: /opt/old/venv/bin/python ->" in result.error.message


def test_enable_linger(run_service, shim: Shim, instances) -> None:
    result = run_service("install", "--enable-linger")
    assert result.exit_code == 0, result.output
    assert ["loginctl", "enable-linger", USER] in shim.calls("loginctl")
    assert shim.state["linger"] == "yes"
    assert "lingering" not in result.stderr


def test_failing_enable_is_a_service_error(run_service, shim: Shim, instances) -> None:
    shim.fail(
        "systemctl", ["--user", "enable"], rc=1, stderr="Failed to enable unit: Access denied\n"
    )
    result = run_service("install")
    assert result.exit_code == 8
    assert "Access denied" in result.error.message
    assert "systemctl --user enable moltbot-gateway.service" in result.error.message


def test_no_systemd_user_manager_writes_file_and_says_what_to_do(
    run_service, shim: Shim, home: Path, instances
) -> None:
    shim.no_bus()
    result = run_service("install", profile="rescue")
    assert result.exit_code == 0, result.output
    assert (unit_dir(home) / "moltbot-gateway-rescue.service").is_file()
    assert "not reachable" in result.stderr and "No medium found" in result.stderr
    assert "moltbot --profile rescue gateway" in result.stdout
    assert "systemctl --user enable --now moltbot-gateway-rescue.service" in result.stdout
    start = run_service("start", profile="rescue")
    assert start.exit_code == 8
    assert "not reachable" in start.error.message
    assert "moltbot --profile rescue gateway" in start.error.hint


def test_systemctl_missing_entirely(run_service, home: Path, instances, tmp_path: Path) -> None:
    empty = tmp_path / "empty bin"
    empty.mkdir()
    result = run_service("start", extra_env={"PATH": str(empty)})
    assert result.exit_code == 8
    assert "not installed" in result.error.message
    install = run_service("install", extra_env={"PATH": str(empty)})
    assert install.exit_code == 0
    assert "systemctl not found" in install.stderr


def test_start_stop_restart_use_systemctl(run_service, shim: Shim, instances) -> None:
    assert run_service("install", profile="rescue").exit_code == 0
    unit = "moltbot-gateway-rescue.service"
    for verb in ("stop", "start", "restart"):
        shim.clear_calls()
        result = run_service(verb, profile="rescue")
        assert result.exit_code == 0, result.output
        assert shim.calls("systemctl")[-1] == ["systemctl", "--user", verb, unit]
    shim.fail("systemctl", ["--user", "restart"], rc=1, stderr="Job failed.\n")
    failed = run_service("restart", profile="rescue")
    assert failed.exit_code == 8 and "Job failed." in failed.error.message


def test_start_when_not_installed(run_service, shim: Shim, instances) -> None:
    result = run_service("start", profile="rescue")
    assert result.exit_code == 8
    assert "not installed" in result.error.message
    assert "moltbot --profile rescue gateway install" in result.error.hint
    stop = run_service("stop", "--json", profile="rescue")  # as the README says: exit 8
    assert stop.exit_code == 8 and "not installed" in stop.error.message


def test_uninstall_removes_only_this_profile(
    run_service, shim: Shim, home: Path, instances
) -> None:
    assert run_service("install").exit_code == 0
    assert run_service("install", profile="rescue").exit_code == 0
    shim.clear_calls()
    result = run_service("uninstall", profile="rescue")
    assert result.exit_code == 0, result.output
    assert not (unit_dir(home) / "moltbot-gateway-rescue.service").exists()
    assert (unit_dir(home) / "moltbot-gateway.service").exists()
    assert shim.calls("systemctl") == [
        ["systemctl", "--user", "show", "--property=Version"],
        ["systemctl", "--user", "disable", "--now", "moltbot-gateway-rescue.service"],
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "reset-failed", "moltbot-gateway-rescue.service"],
        ["systemctl", "--user", "is-enabled", "moltbot-gateway-rescue.service"],
    ]
    assert shim.state["units"]["moltbot-gateway.service"]["active"] is True
    again = run_service("uninstall", "--json", profile="rescue")
    assert json.loads(again.stdout)["result"] == "not-installed"


def test_install_refuses_a_clashing_instance(run_service, home: Path, env, instances) -> None:
    rescue = instances["rescue"]
    config = json.loads(rescue.config_path.read_text())
    config["gateway"]["port"] = instances["default"].port + 1
    rescue.config_path.write_text(json.dumps(config))
    result = run_service("install", profile="rescue")
    assert result.exit_code == 3
    assert "clashes with profile default" in result.error.message
    assert not (unit_dir(home) / "moltbot-gateway-rescue.service").exists()


def test_install_without_config_says_onboard(run_service, home: Path) -> None:
    result = run_service("install", profile="fresh")
    assert result.exit_code == 78
    assert "moltbot --profile fresh onboard" in result.error.hint


def test_launchd_sequence(run_service, shim: Shim, home: Path, instances) -> None:
    extra = {"CLAWDBOT_SERVICE_MANAGER": "launchd"}
    result = run_service("install", profile="rescue", extra_env=extra)
    assert result.exit_code == 0, result.output
    plist = home / "Library" / "LaunchAgents" / "bot.molt.rescue.plist"
    assert plist.is_file()
    target = f"gui/{os.getuid()}/bot.molt.rescue"
    assert shim.calls("launchctl") == [
        ["launchctl", "bootout", target],
        ["launchctl", "enable", target],
        ["launchctl", "bootstrap", f"gui/{os.getuid()}", str(plist)],
    ]
    shim.clear_calls()
    assert run_service("restart", profile="rescue", extra_env=extra).exit_code == 0
    assert shim.calls("launchctl")[-1] == ["launchctl", "kickstart", "-k", target]
    shim.clear_calls()
    assert run_service("uninstall", profile="rescue", extra_env=extra).exit_code == 0
    assert ["launchctl", "bootout", target] in shim.calls("launchctl")
    assert not plist.exists()
    assert shim.state["loaded"] == {}


def test_schtasks_sequence(run_service, shim: Shim, home: Path, instances) -> None:
    extra = {"CLAWDBOT_SERVICE_MANAGER": "schtasks", "USERNAME": "me", "USERDOMAIN": "BOX"}
    result = run_service("install", profile="rescue", extra_env=extra)
    assert result.exit_code == 0, result.output
    task = "Moltbot Gateway (rescue)"
    xml = instances["rescue"].state_dir / "service" / "gateway-task.xml"
    assert shim.calls("schtasks") == [
        ["schtasks", "/End", "/TN", task],
        ["schtasks", "/Create", "/F", "/TN", task, "/XML", str(xml)],
        ["schtasks", "/Run", "/TN", task],
    ]
    shim.clear_calls()
    assert run_service("stop", profile="rescue", extra_env=extra).exit_code == 0
    assert shim.calls("schtasks")[-1] == ["schtasks", "/End", "/TN", task]
    assert run_service("uninstall", profile="rescue", extra_env=extra).exit_code == 0
    assert shim.state["tasks"] == {}
