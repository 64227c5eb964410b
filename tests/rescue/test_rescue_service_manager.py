"""A target with an installed service is restarted through its service manager (the
recording systemctl stand-in of tests/service), and a start that fails is reported with
the service's exit code and the reason from the target's log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))

from shimtools import Shim  # noqa: E402
from tests.rescue.rescue_helpers import Host  # noqa: E402

UNIT = "moltbot-gateway-main.service"


def test_restart_goes_through_the_installed_service(
    host: Host, run_moltbot: Any, tmp_path: Path
) -> None:
    shim = Shim(tmp_path / "bin")
    env = {"PATH": shim.path_env(), "CLAWDBOT_SERVICE_MANAGER": "systemd"}
    host.write("main")
    host.write("rescue", {"rescue": {"targets": ["main"], "startTimeoutSeconds": 30}})
    installed = run_moltbot("--profile", "main", "gateway", "install", env=env)
    assert installed.returncode == 0, installed.stderr
    host.break_config("main")
    assert host.fail_to_start("main") == 78  # what the unit's last start logged
    shim.clear_calls()
    failed_unit = "LoadState=loaded\nActiveState=failed\nSubState=failed\nMainPID=0\n"
    shim.fail(
        "systemctl",
        ["--user", "show", UNIT],
        rc=0,
        stderr="",
        stdout=failed_unit + "ExecMainStatus=78\n",
    )

    status = run_moltbot("--profile", "rescue", "rescue", "main", "status", env=env)
    assert f"service: systemd {UNIT} not running" in status.stdout, status.stdout

    restart = run_moltbot("--profile", "rescue", "rescue", "main", "restart", "--yes", env=env)
    assert restart.returncode == 8, restart.stdout + restart.stderr
    assert f"{UNIT} stopped with exit code 78" in restart.stderr
    assert "config syntax error" in restart.stderr  # the reason, from main's log
    assert ["systemctl", "--user", "restart", UNIT] in shim.calls("systemctl")
    assert not (host.state("main") / "logs" / "gateway.detached.log").exists()
