"""Upstream's own CLI (OpenClaw 2026.1.30) against a moltbot gateway: ``devices``,
``nodes``, ``approvals``, ``agent -m`` and ``logs`` work as they do against upstream's."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.agents.gateway_agents import start
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.upstream import require, run_cli

from gateway_harness import GatewayProcess, moltbot_env, signed_connect_params, ws_client


@pytest.fixture
def gateway(home: Path, llm: FakeOpenAI) -> Iterator[GatewayProcess]:
    require()
    gw = start(home, openai_config(llm.base_url))
    yield gw
    gw.stop()


def cli(home: Path, gw: GatewayProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """``openclaw ARGS --url ... --token ... [-- REST]`` (commands that take them)."""
    cut = args.index("--") if "--" in args else len(args)
    target = ("--url", gw.url, "--token", gw.token)
    return run_cli(*args[:cut], *target, *args[cut:], home=home)


def env_cli(home: Path, gw: GatewayProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """Commands that find the gateway through the environment (``agent``, ``logs``)."""
    env = {"OPENCLAW_GATEWAY_PORT": str(gw.port), "OPENCLAW_GATEWAY_TOKEN": gw.token}
    return run_cli(*args, home=home, env=env)


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    start = proc.stdout.index("{") if "{" in proc.stdout else proc.stdout.index("[")
    return json.loads(proc.stdout[start:])


async def remote_device(gw: GatewayProcess) -> str:
    """A device connecting through an (untrusted) proxy: not local, so it must be
    approved; returns its pairing request id."""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(gw.url, headers={"X-Forwarded-For": "203.0.113.7"}) as ws:
            nonce = json.loads((await ws.receive()).data)["payload"]["nonce"]
            params = signed_connect_params(gw.token, nonce)
            await ws.send_json({"type": "req", "id": "c", "method": "connect", "params": params})
            answer = json.loads((await ws.receive()).data)
    assert answer["error"]["code"] == "NOT_PAIRED"
    return str(answer["error"]["details"]["requestId"])


async def test_devices_list_and_approve(home: Path, gateway: GatewayProcess) -> None:
    request_id = await remote_device(gateway)
    listed = as_json(cli(home, gateway, "devices", "list", "--json"))
    (pending,) = listed["pending"]
    assert pending["requestId"] == request_id and pending["role"] == "operator"
    # upstream's CLI signed in with its own device identity: paired as a local client
    assert any(d.get("clientId") == "cli" for d in listed["paired"])
    assert "token" not in json.dumps(listed["paired"]).replace('"tokens"', "")
    table = cli(home, gateway, "devices", "list")
    assert "Pending" in table.stdout and request_id in table.stdout, table.stdout
    approved = cli(home, gateway, "devices", "approve", request_id)
    assert approved.returncode == 0 and "Approved" in approved.stdout, approved.stderr
    after = as_json(cli(home, gateway, "devices", "list", "--json"))
    assert after["pending"] == [] and len(after["paired"]) == 2


async def test_nodes_status_and_run_on_a_node_host(home: Path, gateway: GatewayProcess) -> None:
    log = home / "node.log"
    with log.open("w") as out:
        node = subprocess.Popen(
            [sys.executable, "-m", "moltbot", "--profile", "nodebox", "node", "run"]
            + ["--port", str(gateway.port), "--token", gateway.token, "--display-name", "box"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=moltbot_env(home),
            cwd=home,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while "node host connected" not in log.read_text():
            assert node.poll() is None and time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.05)
        status = as_json(cli(home, gateway, "nodes", "status", "--json"))
        (row,) = status["nodes"]
        assert row["displayName"] == "box" and row["connected"] and row["paired"]
        assert "system.run" in row["commands"]
        # upstream's `nodes run` asks the gateway's operators first (exec.approval.request)
        async with ws_client(gateway.url, gateway.token) as operator:
            argv = ("nodes", "run", "--node", "box", "--", "echo", "hi")
            ran = asyncio.create_task(asyncio.to_thread(cli, home, gateway, *argv))
            asked = await operator.wait_event(
                lambda f: f["event"] == "exec.approval.requested", timeout=60
            )
            assert asked["payload"]["request"]["host"] == "node"
            assert asked["payload"]["request"]["command"] == "echo hi"
            await operator.call(
                "exec.approval.resolve", {"id": asked["payload"]["id"], "decision": "allow-once"}
            )
            done = await ran
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.strip().endswith("hi"), done.stdout
        described = as_json(cli(home, gateway, "nodes", "describe", "--node", "box", "--json"))
        assert described["nodeId"] == row["nodeId"]
    finally:
        node.terminate()
        node.wait(10)


async def test_approvals_get_from_the_gateway(home: Path, gateway: GatewayProcess) -> None:
    async with ws_client(gateway.url, gateway.token) as client:
        await client.call(
            "exec.approvals.set",
            {
                "file": {
                    "version": 1,
                    "agents": {"main": {"allowlist": [{"pattern": "/usr/bin/uname"}]}},
                }
            },
        )
    snapshot = as_json(cli(home, gateway, "approvals", "get", "--gateway", "--json"))
    assert snapshot["path"] == str(gateway.state_dir / "exec-approvals.json")
    assert snapshot["file"]["agents"]["main"]["allowlist"][0]["pattern"] == "/usr/bin/uname"


async def test_agent_message_prints_the_reply(home: Path, gateway: GatewayProcess) -> None:
    # in a thread: the stand-in model answers on this test's event loop
    plain = await asyncio.to_thread(
        env_cli, home, gateway, "agent", "-m", "hello there", "--agent", "main"
    )
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip().endswith("echo: hello there"), plain.stdout  # not "completed"
    data = as_json(
        await asyncio.to_thread(
            env_cli, home, gateway, "agent", "-m", "again", "--agent", "main", "--json"
        )
    )
    assert data["status"] == "ok"
    assert data["result"]["payloads"][0]["text"] == "echo: again"
    assert data["result"]["meta"]["agentMeta"]["model"] == "m1"


async def test_logs_show_level_and_subsystem(home: Path, gateway: GatewayProcess) -> None:
    shown = env_cli(home, gateway, "logs", "--limit", "50", "--plain")
    assert shown.returncode == 0, shown.stderr
    assert "Log tail truncated" not in shown.stdout + shown.stderr
    lines = [line for line in shown.stdout.splitlines() if " info " in line]
    assert any(" gateway " in line and "listening on" in line for line in lines), shown.stdout
    parsed = [
        json.loads(line)
        for line in env_cli(home, gateway, "logs", "--limit", "50", "--json").stdout.splitlines()
        if line.startswith("{")
    ]
    logs = [p for p in parsed if p.get("type") == "log"]
    assert logs and all(p["level"] and p["subsystem"] for p in logs)
