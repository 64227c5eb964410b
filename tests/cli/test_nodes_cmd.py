"""``moltbot nodes pending|approve|reject`` against a real gateway: both kinds of
request (a ``node.pair.request`` and a node connecting with a device identity) are
decided through the method of their own kind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aiohttp

from gateway_harness import (
    GatewayProcess,
    moltbot_env,
    signed_connect_params,
    start_gateway,
    ws_client,
)


def nodes(home: Path, gw: GatewayProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "moltbot", "--profile", "main", "nodes", *args]
        + ["--url", gw.url, "--token", gw.token],
        capture_output=True,
        text=True,
        env=moltbot_env(home),
        cwd=home,
        timeout=60,
    )


async def remote_node(gw: GatewayProcess) -> str:
    """A node connecting through an (untrusted) proxy: it must be approved; returns
    its device pairing request id."""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(gw.url, headers={"X-Forwarded-For": "203.0.113.9"}) as ws:
            nonce = json.loads((await ws.receive()).data)["payload"]["nonce"]
            params = signed_connect_params(gw.token, nonce, role="node", scopes=[])
            await ws.send_json({"type": "req", "id": "c", "method": "connect", "params": params})
            answer = json.loads((await ws.receive()).data)
    assert answer["error"]["code"] == "NOT_PAIRED", answer
    return str(answer["error"]["details"]["requestId"])


async def test_nodes_approve_and_reject_both_kinds(home: Path) -> None:
    gw = start_gateway(home)
    try:
        async with ws_client(gw.url, gw.token) as op:
            one = await op.call("node.pair.request", {"nodeId": "n1", "displayName": "one"})
            two = await op.call("node.pair.request", {"nodeId": "n2"})
            device_request = await remote_node(gw)

            listed = nodes(home, gw, "pending", "--json")
            assert listed.returncode == 0, listed.stderr
            kinds = {r["requestId"]: r["kind"] for r in json.loads(listed.stdout)}
            assert kinds == {
                one["request"]["requestId"]: "node.pair",
                two["request"]["requestId"]: "node.pair",
                device_request: "device",
            }

            approved = nodes(home, gw, "approve", one["request"]["requestId"])
            assert approved.returncode == 0 and "Approved n1" in approved.stdout, approved.stderr
            rejected = nodes(home, gw, "reject", two["request"]["requestId"])
            assert rejected.returncode == 0 and "Rejected n2" in rejected.stdout, rejected.stderr
            device = nodes(home, gw, "approve", device_request, "--json")
            assert device.returncode == 0, device.stderr
            device_id = json.loads(device.stdout)["device"]["deviceId"]

            node_store = await op.call("node.pair.list", {})
            assert node_store["pending"] == []
            assert [n["nodeId"] for n in node_store["paired"]] == ["n1"]
            devices = await op.call("device.pair.list", {})
            assert devices["pending"] == []
            [paired] = [d for d in devices["paired"] if d["deviceId"] == device_id]
            assert paired["roles"] == ["node"]
            assert nodes(home, gw, "pending", "--json").stdout.strip() == "[]"
    finally:
        gw.stop()
