"""The client commands, run as a user would: status, health, gateway status/probe/call, logs."""

from __future__ import annotations

import json
import time

from tests.gateway.test_footprint import imported_modules

from gateway_harness import CORE_ONLY, free_port_block, launch_gateway

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy")


def test_status_when_down_is_fast_and_shows_last_error(home, run_moltbot) -> None:
    broken = home / ".clawdbot-main"
    port = free_port_block()
    assert run_moltbot("--profile", "main", "setup", "--port", str(port)).returncode == 0
    # a gateway that failed: its last error is in the log
    assert json.loads((broken / "moltbot.json").read_text())["gateway"]["port"] == port
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen()
    try:
        proc, _ = launch_gateway(home, "main", env=CORE_ONLY)
        assert proc.wait(20) == 5
    finally:
        holder.close()
    started = time.monotonic()
    result = run_moltbot("--profile", "main", "status")
    elapsed = time.monotonic() - started
    assert result.returncode == 0
    assert "not reachable" in result.stdout
    assert f"port {port} (gateway) is already in use" in result.stdout  # last error line
    assert elapsed < 5
    data = json.loads(run_moltbot("--profile", "main", "status", "--json").stdout)
    assert data["gateway"]["reachable"] is False and data["port"] == port


def test_status_never_probes_another_profile(gateways, run_moltbot) -> None:
    main = gateways("main")
    result = run_moltbot("--profile", "rescue", "status", "--json")
    data = json.loads(result.stdout)
    assert data["profile"] == "rescue" and data["gateway"]["reachable"] is False
    assert str(main.port) not in data["gateway"]["url"]


def test_health_call_probe_and_gateway_status(gateway, run_moltbot) -> None:
    health = run_moltbot("--profile", "main", "health", "--json")
    assert health.returncode == 0 and json.loads(health.stdout)["ok"] is True
    called = run_moltbot("--profile", "main", "gateway", "call", "status")
    assert json.loads(called.stdout)["instance"]["pid"] == gateway.pid
    bad = run_moltbot("--profile", "main", "gateway", "call", "nope.nope")
    assert bad.returncode == 1 and "unknown method: nope.nope" in bad.stderr
    probe = run_moltbot("--profile", "main", "gateway", "probe", "--json")
    probed = json.loads(probe.stdout)
    assert probed["ok"] and probed["connectLatencyMs"] >= 0
    assert probed["config.get"]["parsed"]["gateway"]["auth"]["token"] == "__MOLTBOT_REDACTED__"
    status = run_moltbot("--profile", "main", "gateway", "status", "--json")
    facts = json.loads(status.stdout)
    assert facts["rpc"]["ok"] and facts["rpc"]["auth"] == "ok"
    assert facts["process"]["pid"] == gateway.pid and facts["port"]["ownedByGateway"]
    refused = run_moltbot("--profile", "main", "gateway", "status", "--token", "wrong")
    assert refused.returncode == 7 and "auth refused" in refused.stdout


def test_token_from_environment_alias(gateway, run_moltbot) -> None:
    ok = run_moltbot("--profile", "main", "health", env={"OPENCLAW_GATEWAY_TOKEN": gateway.token})
    assert ok.returncode == 0
    # MOLTBOT_ beats CLAWDBOT_ beats OPENCLAW_
    wrong = run_moltbot(
        "--profile",
        "main",
        "health",
        env={"MOLTBOT_GATEWAY_TOKEN": "wrong", "CLAWDBOT_GATEWAY_TOKEN": gateway.token},
    )
    assert wrong.returncode == 7


def test_logs_work_offline_and_online(gateway, run_moltbot) -> None:
    online = run_moltbot("--profile", "main", "logs", "--limit", "20", "--json")
    lines = [json.loads(line) for line in online.stdout.splitlines()]
    assert any("listening on" in entry["message"] for entry in lines)
    gateway.stop()
    offline = run_moltbot("--profile", "main", "logs", "--limit", "5")
    assert offline.returncode == 0 and "gateway stopped" in offline.stdout


def test_status_imports_neither_asyncio_nor_a_websocket_library(gateway, run_moltbot) -> None:
    """`status` makes one round trip with the blocking client: no event loop, no
    ``websockets``, and no models (the config is read raw). Its -X importtime report
    says so."""
    result = run_moltbot(
        "--profile", "main", "status", "--json", env={"PYTHONPROFILEIMPORTTIME": "1"}
    )
    assert result.returncode == 0 and json.loads(result.stdout)["gateway"]["reachable"]
    modules = imported_modules(result.stderr)
    assert "moltbot.gateway.sync_client" in modules  # the report is there
    heavy = {"asyncio", "websockets", "pydantic", "aiohttp"}
    assert sorted(m for m in modules if m.split(".")[0] in heavy) == []
    assert "moltbot.validation" not in modules


def test_client_commands_connect_directly_whatever_the_proxy_variables(
    gateway, run_moltbot
) -> None:
    """A gateway's token is never sent to a proxy: with every proxy variable pointing
    at a port where nothing listens, the commands still reach the gateway."""
    dead = f"http://127.0.0.1:{free_port_block(1)}"
    env: dict[str, str | None] = {"no_proxy": None, "NO_PROXY": None}
    env |= {name: dead for name in PROXY_VARIABLES} | {
        name.upper(): dead for name in PROXY_VARIABLES
    }
    status = run_moltbot("--profile", "main", "status", "--json", env=env)
    assert json.loads(status.stdout)["gateway"]["reachable"] is True, status.stdout
    health = run_moltbot("--profile", "main", "health", "--json", env=env)
    assert health.returncode == 0, health.stderr


def test_a_url_that_is_not_one_is_a_usage_error(home, run_moltbot) -> None:
    """A port out of range, an unclosed IPv6 bracket or an empty host label in ``--url``
    is bad input (exit 2, one line on stderr), not a traceback."""
    for url in ("ws://127.0.0.1:99999", "ws://[::1", "ws://a..b:1/"):
        for command in ("status", "health"):
            result = run_moltbot(command, "--url", url)
            assert result.returncode == 2, (command, url, result.stderr)
            assert result.stderr.startswith(f"error: invalid gateway URL {url}"), result.stderr
            assert "Traceback" not in result.stderr
