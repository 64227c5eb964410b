"""One truth per instance, as a new user meets it: the brief's own flows in a fresh HOME with
real gateway subprocesses, then every quick check with `--profile X` alone."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from gateway_harness import free_port_block, launch_gateway, start_gateway

# The browser control service runs (browser status needs it); Chromium is never launched.
NO_CANVAS_NO_CHANNELS = {"CLAWDBOT_SKIP_CANVAS_HOST": "1", "CLAWDBOT_SKIP_CHANNELS": "1"}


def manual_env(home: Path, name: str) -> dict[str, str]:
    """The brief's manual form: CLAWDBOT_CONFIG_PATH=~/.clawdbot/<name>.json and
    CLAWDBOT_STATE_DIR=~/.clawdbot-<name>."""
    return {
        **NO_CANVAS_NO_CHANNELS,
        "CLAWDBOT_CONFIG_PATH": str(home / ".clawdbot" / f"{name}.json"),
        "CLAWDBOT_STATE_DIR": str(home / f".clawdbot-{name}"),
    }


def ok(result) -> str:  # noqa: ANN001
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_briefs_manual_form_then_every_quick_check(home: Path, run_moltbot) -> None:
    main_port = free_port_block()
    rescue_port = free_port_block()
    main = start_gateway(home, None, port=main_port, env=manual_env(home, "main"))
    rescue = start_gateway(home, None, port=rescue_port, env=manual_env(home, "rescue"))
    try:
        for gw, name in ((main, "main"), (rescue, "rescue")):
            data = json.loads(ok(run_moltbot("--profile", name, "status", "--json")))
            assert data["gateway"]["reachable"] is True
            assert data["port"] == gw.port and data["controlPort"] == gw.port + 2
            assert data["configPath"] == str(home / ".clawdbot" / f"{name}.json")
            assert data["drift"] is None
            health = json.loads(ok(run_moltbot("--profile", name, "health", "--json")))
            assert health["ok"] is True
            facts = json.loads(ok(run_moltbot("--profile", name, "gateway", "status", "--json")))
            assert facts["rpc"]["auth"] == "ok" and facts["process"]["pid"] == gw.pid
            assert "listening on" in ok(run_moltbot("--profile", name, "logs", "--limit", "50"))
            browser = json.loads(ok(run_moltbot("--profile", name, "browser", "status", "--json")))
            assert browser["reachable"] is True and browser["controlPort"] == gw.port + 2
            assert browser["cdpRange"] == [gw.port + 11, gw.port + 110]
            doctor = json.loads(ok(run_moltbot("--profile", name, "doctor", "--json")))
            assert doctor["ok"] and doctor["findings"] == [], doctor["findings"]
        # no default instance exists: doctor checks the host, proposes no `onboard`
        doctor = run_moltbot("doctor")
        assert doctor.returncode == 0, doctor.stdout
        assert "config-missing" not in doctor.stdout and "onboard" not in doctor.stdout
        assert "no default instance here" in doctor.stdout
        rows = json.loads(ok(run_moltbot("status", "--all", "--json")))
        assert {(r["profile"], r["port"], r["controlPort"]) for r in rows} == {
            ("main", main_port, main_port + 2),
            ("rescue", rescue_port, rescue_port + 2),
        }
    finally:
        main.stop()
        rescue.stop()


def test_a_client_of_a_stopped_instance_names_who_serves_its_port(home: Path, run_moltbot) -> None:
    port = free_port_block()
    main = start_gateway(home, None, port=port, env=manual_env(home, "main"))
    try:
        # the default instance, never set up, would use the same port by default
        config = home / ".clawdbot" / "moltbot.json"
        config.write_text(json.dumps({"gateway": {"port": port, "auth": {"token": "t" * 40}}}))
        for args in (("health",), ("gateway", "call", "health"), ("gateway", "status")):
            result = run_moltbot(*args)
            assert result.returncode == 6, (args, result.stderr)
            assert f"port {port} is served by profile main" in result.stdout + result.stderr
        status = ok(run_moltbot("status"))
        assert f"not running; port {port} is served by profile main" in status
        assert "refused the credentials" not in status
        # a wrong token sent to a gateway tells a local client whose gateway it reached
        refused = run_moltbot("health", "--url", main.url, "--token", "t" * 40)
        assert refused.returncode == 7 and "this is the gateway of profile main" in refused.stderr
    finally:
        main.stop()


def test_a_one_off_port_leaves_the_config_untouched(home: Path, run_moltbot) -> None:
    configured = free_port_block(120)
    ok(run_moltbot("--profile", "rescue", "setup", "--port", str(configured)))
    config = home / ".clawdbot-rescue" / "moltbot.json"
    before = config.read_bytes()
    one_off = free_port_block(120)
    gw = start_gateway(home, "rescue", port=one_off, env=NO_CANVAS_NO_CHANNELS)
    try:
        data = json.loads(ok(run_moltbot("--profile", "rescue", "status", "--json")))
        assert data["port"] == one_off
        assert data["drift"] == f"running on {one_off}, configured {configured} (restart to apply)"
        text = ok(run_moltbot("--profile", "rescue", "status"))
        assert f"Drift       running on {one_off}, configured {configured}" in text
        [row] = json.loads(ok(run_moltbot("status", "--all", "--json")))
        assert (row["port"], row["controlPort"], row["cdpRange"][0]) == (
            one_off,
            one_off + 2,
            one_off + 11,
        )
        assert row["configured"]["port"] == configured
        browser = json.loads(ok(run_moltbot("--profile", "rescue", "browser", "status", "--json")))
        [default] = [p for p in browser["profiles"] if p["name"] == "moltbot"]
        assert default["cdpPort"] in range(one_off + 11, one_off + 111)
    finally:
        gw.stop()
    assert config.read_bytes() == before
    # on its configured port, the allocation of the one-off range is not reused
    gw = start_gateway(home, "rescue", env=NO_CANVAS_NO_CHANNELS, port=configured, port_flag=False)
    try:
        browser = json.loads(ok(run_moltbot("--profile", "rescue", "browser", "status", "--json")))
        [default] = [p for p in browser["profiles"] if p["name"] == "moltbot"]
        assert default["cdpPort"] in range(configured + 11, configured + 111)
        assert default["cdpPortSource"] == "allocated"
        record = json.loads((home / ".clawdbot-rescue" / "browser" / "cdp-ports.json").read_text())
        assert record == {
            "controlPort": configured + 2,
            "profiles": {"moltbot": default["cdpPort"]},
        }
    finally:
        gw.stop()
    assert config.read_bytes() == before


def test_a_failed_first_start_leaves_no_instance_behind(home: Path, run_moltbot) -> None:
    port = free_port_block()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        proc, log = launch_gateway(home, "ghost", port=port, env=NO_CANVAS_NO_CHANNELS)
        assert proc.wait(30) == 5, log.read_text()
    assert "already in use" in log.read_text()
    assert not (home / ".clawdbot-ghost").exists()
    assert json.loads(ok(run_moltbot("status", "--all", "--json"))) == []
    # ...so it cannot block a neighbour
    ok(run_moltbot("--profile", "next", "setup", "--port", str(port + 1)))


def test_status_shows_only_the_last_runs_error(home: Path, run_moltbot) -> None:
    port = free_port_block()
    ok(run_moltbot("--profile", "main", "setup", "--port", str(port)))
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        proc, _ = launch_gateway(home, "main", env=NO_CANVAS_NO_CHANNELS)
        assert proc.wait(30) == 5
    assert "Last error" in ok(run_moltbot("--profile", "main", "status"))
    gw = start_gateway(home, "main", env=NO_CANVAS_NO_CHANNELS, port=port, port_flag=False)
    gw.stop()
    assert "Last error" not in ok(run_moltbot("--profile", "main", "status"))


def test_gateway_help_and_typos(run_moltbot) -> None:
    help_text = ok(run_moltbot("gateway", "--help"))
    for flag in ("--port", "--bind", "--force", "--token"):
        assert flag in help_text
    typo = run_moltbot("stauts")
    assert typo.returncode == 2 and "Did you mean 'status'?" in typo.stderr
    typo = run_moltbot("gateway", "stauts")
    assert typo.returncode == 2 and "Did you mean 'status'" in typo.stderr
