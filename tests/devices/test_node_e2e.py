"""A node host (`moltbot node run`, its own process and instance) pairs with a gateway
over its LAN address, is approved by an operator, and the agent's `nodes` tool runs
commands on it — under the node's exec policy, with the gateway's operators deciding
what that policy cannot vouch for."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.agents.gateway_agents import is_chat, start
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Reply

from gateway_harness import GatewayProcess, MethodFailed, WsClient, moltbot_env, ws_client


def lan_address() -> str | None:
    """This machine's address on its default route (not loopback), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # TEST-NET-2: no packet is sent
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


LAN = lan_address()
pytestmark = pytest.mark.skipif(LAN is None, reason="no non-loopback address to connect from")


@pytest.fixture
def gateway(home: Path, llm: FakeOpenAI) -> Iterator[GatewayProcess]:
    config = openai_config(llm.base_url)
    config["gateway"] = {"bind": "lan", "auth": {"token": "Kx9-qT2vLm8Rw4Zp7Nb3Hc6Jd1Fg5Ys0Ua"}}
    config["tools"] = {"exec": {"approvalTimeoutSeconds": 60}}
    gw = start(home, config)
    yield gw
    gw.stop()


class NodeHost:
    def __init__(self, home: Path, gw: GatewayProcess, name: str = "buildbox") -> None:
        self.log = home / f"node-{name}.log"
        handle = self.log.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "moltbot",
                "--profile",
                "nodebox",
                "node",
                "run",
                "--host",
                str(LAN),
                "--port",
                str(gw.port),
                "--token",
                gw.token,
                "--display-name",
                name,
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
            env=moltbot_env(home),
            cwd=home,
            start_new_session=True,
        )
        handle.close()

    def output(self) -> str:
        return self.log.read_text()

    async def wait_output(self, needle: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.output():
            assert self.proc.poll() is None, self.output()
            assert time.monotonic() < deadline, f"{needle!r} never printed:\n{self.output()}"
            await asyncio.sleep(0.05)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        return self.proc.returncode


@pytest.fixture
def node_host(home: Path, gateway: GatewayProcess) -> Iterator[NodeHost]:
    host = NodeHost(home, gateway)
    yield host
    host.stop()


async def until(probe: Any, timeout: float = 30) -> Any:
    """Poll ``probe()`` (a barrier on the gateway's own answers) until it returns a value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        assert time.monotonic() < deadline, "condition never met"
        await asyncio.sleep(0.1)


async def paired_node(op: WsClient, host: NodeHost, home: Path, gw: GatewayProcess) -> str:
    """Wait for the node's pairing request, approve it with the CLI, wait until connected."""

    async def pending() -> Any:
        listing = await op.call("device.pair.list")
        return [r for r in listing["pending"] if r.get("role") == "node"]

    (request,) = await until(pending)
    assert request["displayName"] == "buildbox" and request["remoteIp"] == LAN
    await host.wait_output(f"moltbot devices approve {request['requestId']}")
    assert not (await op.call("node.list"))["nodes"]  # not paired, not connected
    approve = subprocess.run(
        [sys.executable, "-m", "moltbot", "--profile", "main", "devices", "approve"]
        + [request["requestId"], "--json"],
        capture_output=True,
        text=True,
        env=moltbot_env(home),
        cwd=home,
        timeout=60,
    )
    assert approve.returncode == 0, approve.stderr
    assert json.loads(approve.stdout)["device"]["roles"] == ["node"]

    async def connected() -> Any:
        return [n for n in (await op.call("node.list"))["nodes"] if n["connected"]]

    (node,) = await until(connected)
    assert node["displayName"] == "buildbox" and node["paired"] and node["platform"] == "linux"
    assert node["commands"] == sorted(
        ["system.run", "system.which", "system.execApprovals.get", "system.execApprovals.set"]
    )
    await host.wait_output("node host connected")
    return str(node["nodeId"])


def tool_result(llm: FakeOpenAI, index: int = -1) -> str:
    """The tool result the model received in its ``index``-th request."""
    messages = llm.requests[index]["body"]["messages"]
    return str(next(m for m in reversed(messages) if m["role"] == "tool")["content"])


async def chat(op: WsClient, text: str) -> dict[str, Any]:
    ack = await op.call(
        "chat.send", {"sessionKey": "main", "message": text, "idempotencyKey": str(uuid.uuid4())}
    )
    return await op.wait_event(is_chat(ack["runId"], "final", "error"), timeout=60)


async def test_a_node_pairs_is_approved_and_runs_the_agents_command(
    home: Path, gateway: GatewayProcess, node_host: NodeHost, llm: FakeOpenAI
) -> None:
    async with ws_client(gateway.url, gateway.token) as op:
        node_id = await paired_node(op, node_host, home, gateway)
        llm.push(
            Reply("", tool_calls=[("nodes", {"action": "status"})]),
            Reply(
                "",
                tool_calls=[
                    ("nodes", {"action": "run", "node": "buildbox", "command": "echo node-says-hi"})
                ],
            ),
            Reply(
                "", tool_calls=[("nodes", {"action": "run", "node": "buildbox", "command": "pwd"})]
            ),
            Reply("done"),
        )
        final = await chat(op, "run it on the build box")
        assert final["payload"]["state"] == "final"
        assert json.loads(tool_result(llm, 1))["nodes"][0]["nodeId"] == node_id
        ran = tool_result(llm, 2)
        assert ran.startswith("$ echo node-says-hi  (on buildbox)\nnode-says-hi\n[exit code 0]"), (
            ran
        )
        # it ran in the node instance's own workspace, not the gateway's
        assert tool_result(llm, 3).splitlines()[1] == str(home / "clawd-nodebox")
        described = await op.call("node.describe", {"nodeId": node_id})
        assert described["connected"] and described["nodeId"] == node_id


async def test_what_the_nodes_policy_cannot_vouch_for_waits_for_an_operator(
    home: Path, gateway: GatewayProcess, node_host: NodeHost, llm: FakeOpenAI
) -> None:
    async with ws_client(gateway.url, gateway.token) as op:
        await paired_node(op, node_host, home, gateway)
        piped = "echo approved-run | tr a-z A-Z"
        llm.push(
            Reply(
                "", tool_calls=[("nodes", {"action": "run", "node": "buildbox", "command": piped})]
            ),
            Reply(
                "", tool_calls=[("nodes", {"action": "run", "node": "buildbox", "command": piped})]
            ),
            Reply("done"),
        )
        ack = await op.call(
            "chat.send",
            {"sessionKey": "main", "message": "shout", "idempotencyKey": str(uuid.uuid4())},
        )
        first = await op.wait_event(lambda f: f["event"] == "exec.approval.requested", timeout=60)
        request = first["payload"]
        assert request["request"]["command"] == piped and request["request"]["host"] == "node"
        assert request["request"]["sessionKey"] == "agent:main:main"
        assert request["expiresAtMs"] - request["createdAtMs"] == 60_000
        await op.call("exec.approval.resolve", {"id": request["id"], "decision": "allow-once"})
        resolved = await op.wait_event(lambda f: f["event"] == "exec.approval.resolved")
        assert resolved["payload"]["decision"] == "allow-once"
        second = await op.wait_event(
            lambda f: (
                f["event"] == "exec.approval.requested" and f["payload"]["id"] != request["id"]
            ),
            timeout=60,
        )
        await op.call("exec.approval.resolve", {"id": second["payload"]["id"], "decision": "deny"})
        final = await op.wait_event(is_chat(ack["runId"], "final", "error"), timeout=60)
        assert final["payload"]["state"] == "final"
        assert tool_result(llm, 1).splitlines()[1] == "APPROVED-RUN"
        assert "not approved by an operator" in tool_result(llm, 2)
        with pytest.raises(MethodFailed, match="unknown approval id"):
            await op.call("exec.approval.resolve", {"id": request["id"], "decision": "deny"})


async def test_node_host_is_refused_until_approved_and_revocation_cuts_it_off(
    home: Path, gateway: GatewayProcess, node_host: NodeHost
) -> None:
    async with ws_client(gateway.url, gateway.token) as op:
        node_id = await paired_node(op, node_host, home, gateway)
        result = await op.call(
            "node.invoke",
            {
                "nodeId": node_id,
                "command": "system.which",
                "params": {"bins": ["ls", "no-such-binary"]},
                "idempotencyKey": "k1",
            },
        )
        assert list(result["payload"]["bins"]) == ["ls"]
        with pytest.raises(MethodFailed, match="node command not allowed"):
            await op.call(
                "node.invoke",
                {"nodeId": node_id, "command": "camera.snap", "idempotencyKey": "k2"},
            )
        await op.call("device.token.revoke", {"deviceId": node_id, "role": "node"})

        async def gone() -> bool:
            return not any(n["connected"] for n in (await op.call("node.list"))["nodes"])

        assert await until(gone)
        # the host reconnects with the shared token and gets a fresh device token
        await node_host.wait_output("connection lost")
        assert node_host.proc.poll() is None
    assert os.path.exists(home / ".clawdbot-nodebox" / "identity" / "device.json")
