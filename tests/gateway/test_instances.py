"""Several instances on one host: isolation, one gateway per state dir, port clashes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

from gateway_harness import CORE_ONLY, free_port_block, launch_gateway, start_gateway, ws_client


async def test_two_profiles_side_by_side(gateways, run_moltbot) -> None:
    main = gateways("main")
    rescue = gateways("rescue")
    assert main.state_dir != rescue.state_dir and main.token != rescue.token
    for gw, profile in ((main, "main"), (rescue, "rescue")):
        async with ws_client(gw.url, gw.token) as client:
            status = await client.call("status")
        assert status["instance"]["profile"] == profile
        assert status["instance"]["stateDir"] == str(gw.state_dir)
        result = run_moltbot("--profile", profile, "status", "--json")
        data = json.loads(result.stdout)
        assert (
            data["gateway"]["reachable"] and data["port"] == gw.port and data["profile"] == profile
        )
    async with ws_client(main.url, main.token):
        pass
    # main's token does not open rescue
    result = run_moltbot("--profile", "rescue", "health", "--token", main.token)
    assert result.returncode == 7 and "refused the credentials" in result.stderr


def test_second_gateway_for_same_state_dir_is_refused(gateways, home) -> None:
    gw = gateways("main")
    proc, log = launch_gateway(home, "main", port=free_port_block(), env=CORE_ONLY)
    assert proc.wait(20) == 4
    text = log.read_text()
    assert f"pid {gw.pid}" in text and f"port {gw.port}" in text and "already running" in text


def test_kill_9_then_restart_works_at_once(gateways, home) -> None:
    gw = gateways("main")
    gw.proc.send_signal(signal.SIGKILL)
    gw.proc.wait(5)
    started = time.monotonic()
    again = gateways("main", port=gw.port)
    assert time.monotonic() - started < 15
    assert again.runtime()["pid"] == again.pid


def test_foreign_listener_on_a_derived_port_is_named(home) -> None:
    port = free_port_block()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", port + 4))
    blocker.listen()
    try:
        proc, log = launch_gateway(
            home, "main", port=port, env={"CLAWDBOT_SKIP_BROWSER_CONTROL_SERVER": "1"}
        )
        assert proc.wait(20) == 5
        text = log.read_text()
        assert f"port {port + 4} (canvas host) is already in use by pid" in text
        assert "python" in text  # the holder's command line
    finally:
        blocker.close()


def test_clash_with_another_instance_is_refused(gateways, home, run_moltbot) -> None:
    main = gateways("main")
    result = run_moltbot(
        "--profile", "other", "gateway", "--port", str(main.port + 1), env=CORE_ONLY, timeout=30
    )
    assert result.returncode == 3
    assert "profile main" in result.stderr or "instance main" in result.stderr


def test_five_simultaneous_starts_one_wins(home, run_moltbot) -> None:
    port = free_port_block()
    assert run_moltbot("--profile", "race", "setup", "--port", str(port)).returncode == 0
    procs = [launch_gateway(home, "race", env=CORE_ONLY, log_name=f"race{i}") for i in range(5)]
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(p.poll() is not None for p, _ in procs) < 4:
            time.sleep(0.1)
        codes = [p.poll() for p, _ in procs]
        assert codes.count(None) == 1, [log.read_text() for _, log in procs]
        assert sorted(c for c in codes if c is not None) == [4, 4, 4, 4]
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)


def test_manual_env_example_from_the_seed(home, run_moltbot) -> None:
    """CLAWDBOT_CONFIG_PATH=~/.clawdbot/main.json CLAWDBOT_STATE_DIR=~/.clawdbot-main \
    moltbot gateway --port N"""
    port = free_port_block()
    env = {
        **CORE_ONLY,
        "CLAWDBOT_CONFIG_PATH": str(home / ".clawdbot" / "main.json"),
        "CLAWDBOT_STATE_DIR": str(home / ".clawdbot-main"),
    }
    gw = start_gateway(home, None, port=port, env=env)
    try:
        runtime = gw.runtime()
        assert runtime["profile"] == "main" and runtime["port"] == port
        assert runtime["configPath"] == str(home / ".clawdbot" / "main.json")
        assert runtime["workspace"] == str(home / "clawd-main")
        result = run_moltbot("status", "--json", env=env)
        assert json.loads(result.stdout)["gateway"]["reachable"] is True
    finally:
        gw.stop()
    # stopped, it is still known to the host with its real config and port
    from moltbot.instance.registry import discover

    known = {k.instance.state_dir: k for k in discover(home, {})}
    entry = known[home / ".clawdbot-main"]
    assert entry.instance.config_path == home / ".clawdbot" / "main.json"
    assert entry.instance.port == port and entry.running is None


def test_binding_beyond_loopback_needs_auth(home) -> None:
    config_dir = home / ".clawdbot-open"
    config_dir.mkdir()
    (config_dir / "moltbot.json").write_text(
        json.dumps({"gateway": {"mode": "local", "port": free_port_block(), "bind": "lan"}})
    )
    proc, log = launch_gateway(home, "open", env=CORE_ONLY)
    assert proc.wait(20) == 78
    assert "no token is configured" in log.read_text()


def test_invalid_config_exits_78(home) -> None:
    config_dir = home / ".clawdbot-broken"
    config_dir.mkdir()
    (config_dir / "moltbot.json").write_text("{gateway: {port: 'many'}}")
    proc, log = launch_gateway(home, "broken", env=CORE_ONLY)
    assert proc.wait(20) == 78
    assert "gateway.port" in log.read_text()


def test_force_stops_the_listener(home) -> None:
    port = free_port_block()
    squatter = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        gw = start_gateway(home, "main", port=port, args=["--force"], env=CORE_ONLY)
        try:
            assert squatter.wait(5) is not None
            assert f"force: stopped pid {squatter.pid}" in gw.output()
        finally:
            gw.stop()
    finally:
        if squatter.poll() is None:
            squatter.kill()
