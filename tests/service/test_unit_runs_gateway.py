"""The seed's rescue-bot recipe end to end, in a fresh HOME (with a space in it):
onboard + gateway install for the main bot and the rescue profile, both units
pass `systemd-analyze verify`, and each gateway runs from its unit's exact
command line and environment — as systemd parses them — on the right port with
the right profile. `status --all` then shows both.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from netkit import free_block
from shimtools import Shim
from systemd_tools import can_dump, systemd_parse, verify

from moltbot.service.systemd import read_unit

GATEWAY_CMD = Path(__file__).parents[2] / "src" / "moltbot" / "cli" / "gateway_cmd.py"
pytestmark = pytest.mark.skipif(not GATEWAY_CMD.exists(), reason="gateway command not built yet")


def moltbot(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "moltbot", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert done.returncode == 0, f"moltbot {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done


def unit_command(unit: Path) -> tuple[list[str], dict[str, str]]:
    """ExecStart argv and Environment= as systemd itself parses them."""
    if can_dump():
        argv, environment = systemd_parse(unit)
        argv = argv[:1] + [a.replace("$$", "$") for a in argv[1:]]
        return argv, environment
    parsed = read_unit(unit)
    assert parsed is not None
    return list(parsed.program), dict(parsed.environment)


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gateway exited {proc.returncode}: {proc.stderr.read()}")
        try:
            with opener.open(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                return json.loads(response.read())
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"gateway on {port} not healthy after {timeout}s")


@pytest.fixture
def fresh(tmp_path: Path) -> tuple[Path, dict[str, str], Shim]:
    home = tmp_path / "fresh home"
    home.mkdir()
    shim = Shim(tmp_path / "shim bin")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CLAWDBOT_", "MOLTBOT_", "OPENCLAW_"))
    }
    env.update(HOME=str(home), PATH=shim.path_env(), NO_COLOR="1")
    return home, env, shim


def test_seed_recipe_as_written(fresh) -> None:
    """The seed's "How to install (rescue bot)" block, command for command."""
    home, env, shim = fresh
    moltbot(env, "onboard", "--non-interactive")
    moltbot(env, "gateway", "install")
    moltbot(env, "--profile", "rescue", "onboard", "--non-interactive")
    moltbot(env, "--profile", "rescue", "gateway", "install")
    units = home / ".config" / "systemd" / "user"
    main_unit = units / "moltbot-gateway.service"
    rescue_unit = units / "moltbot-gateway-rescue.service"
    for unit in (main_unit, rescue_unit):
        if shutil.which("systemd-analyze"):
            result = verify(unit, home)
            assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    assert shim.state["units"]["moltbot-gateway.service"] == {"enabled": True, "active": True}
    assert shim.state["units"]["moltbot-gateway-rescue.service"] == {
        "enabled": True,
        "active": True,
    }
    main_cfg = json.loads((home / ".clawdbot" / "moltbot.json").read_text())
    rescue_cfg = json.loads((home / ".clawdbot-rescue" / "moltbot.json").read_text())
    assert main_cfg["gateway"]["port"] == 18789
    # the seed: rescue at least 20 away; our proposal keeps the whole 111-port block apart
    assert abs(rescue_cfg["gateway"]["port"] - 18789) >= 111
    assert rescue_cfg["agents"]["defaults"]["workspace"] == str(home / "clawd-rescue")
    assert rescue_cfg["gateway"]["auth"]["token"] != main_cfg["gateway"]["auth"]["token"]
    for unit, cfg in ((main_unit, main_cfg), (rescue_unit, rescue_cfg)):
        text = unit.read_text()
        assert cfg["gateway"]["auth"]["token"] not in text
        assert f"--port {cfg['gateway']['port']}" in text
    rows = json.loads(moltbot(env, "status", "--all", "--json").stdout)
    assert [r["profile"] for r in rows] == ["default", "rescue"]


def test_both_gateways_run_from_their_units(fresh) -> None:
    home, env, shim = fresh
    main_port = free_block()
    rescue_port = free_block(avoid=(main_port,))
    moltbot(env, "onboard", "--non-interactive", "--port", str(main_port))
    moltbot(env, "gateway", "install")
    moltbot(env, "--profile", "rescue", "onboard", "--non-interactive", "--port", str(rescue_port))
    moltbot(env, "--profile", "rescue", "gateway", "install")
    units = home / ".config" / "systemd" / "user"
    procs: list[subprocess.Popen] = []
    try:
        for name, profile, port in (
            ("moltbot-gateway.service", "default", main_port),
            ("moltbot-gateway-rescue.service", "rescue", rescue_port),
        ):
            unit = units / name
            if shutil.which("systemd-analyze"):
                result = verify(unit, home)
                assert result.returncode == 0 and not result.stderr.strip(), result.stderr
            argv, environment = unit_command(unit)
            assert argv[1:] == ["-m", "moltbot", "gateway", "--port", str(port)]
            assert environment["CLAWDBOT_PROFILE"] == profile
            workdir = next(
                line.split("=", 1)[1]
                for line in unit.read_text().splitlines()
                if line.startswith("WorkingDirectory=")
            )
            proc = subprocess.Popen(
                argv,
                env=environment,
                cwd=workdir.replace("%%", "%"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            procs.append(proc)
            assert wait_healthy(port, proc).get("ok") is True
            state_dir = Path(environment["CLAWDBOT_STATE_DIR"])
            runtime = json.loads((state_dir / "gateway.json").read_text())
            assert runtime["pid"] == proc.pid
            assert runtime["port"] == port
            assert runtime.get("profile", profile) == profile
        rows = {
            r["profile"]: r for r in json.loads(moltbot(env, "status", "--all", "--json").stdout)
        }
        assert rows["default"]["port"] == main_port and rows["rescue"]["port"] == rescue_port
        assert rows["default"]["reachable"] and rows["rescue"]["reachable"]
        assert rows["default"]["pid"] == procs[0].pid and rows["rescue"]["pid"] == procs[1].pid
        assert not rows["default"]["foreignListener"] and not rows["rescue"]["foreignListener"]
        table = moltbot(env, "status", "--all").stdout
        assert "rescue" in table and str(rescue_port) in table
        doctor = moltbot(env, "doctor", "--json", check=False)
        report = json.loads(doctor.stdout)
        assert report["summary"]["error"] == 0, report["findings"]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert [p.returncode for p in procs] == [0, 0]


def test_unit_exit_codes_that_must_not_restart(fresh) -> None:
    """The gateway's exit codes are the unit's contract: 78 (invalid config) and 4 (already
    running) are in RestartPreventExitStatus, so neither can become a restart loop."""
    home, env, shim = fresh
    port = free_block()
    moltbot(env, "--profile", "rescue", "onboard", "--non-interactive", "--port", str(port))
    moltbot(env, "--profile", "rescue", "gateway", "install")
    unit = home / ".config" / "systemd" / "user" / "moltbot-gateway-rescue.service"
    prevented = next(
        line.split("=", 1)[1].split()
        for line in unit.read_text().splitlines()
        if line.startswith("RestartPreventExitStatus=")
    )
    assert {"78", "4"} <= set(prevented)
    argv, environment = unit_command(unit)
    config = Path(environment["CLAWDBOT_CONFIG_PATH"])
    good = config.read_text()
    config.write_text('{"gateway": {"port": "not a port"}}')
    done = subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=60)
    assert done.returncode == 78, done.stderr
    config.write_text(good)
    first = subprocess.Popen(
        argv, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_healthy(port, first)
        second = subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=60)
        assert second.returncode == 4, second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        try:
            first.wait(timeout=30)
        except subprocess.TimeoutExpired:
            first.kill()
            first.wait()
