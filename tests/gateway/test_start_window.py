"""The gateway's port answers before its subsystems have started (they start after
it, so ``hello-ok`` never waits for them). A WebSocket request sent in that window —
even one the gateway answers synchronously, like ``exec.approvals.get`` — waits for
the subsystems instead of failing with "unavailable"."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import aiohttp
from tests.agents.gateway_agents import write_config

from gateway_harness import free_port_block, launch_gateway, ws_client


async def first_call(url: str, token: str, method: str) -> Any:
    """Connect as soon as the port accepts, then call ``method`` at once."""
    while True:
        try:
            async with ws_client(url, token) as client:
                return await client.call(method)
        except (aiohttp.ClientConnectionError, aiohttp.WSServerHandshakeError):
            await asyncio.sleep(0.002)


async def test_a_method_sent_as_the_port_opens_waits_for_the_subsystems(home: Path) -> None:
    written = write_config(home, "main", {})
    token = json.loads(written.read_text())["gateway"]["auth"]["token"]
    port = free_port_block()
    proc, log = launch_gateway(home, "main", port=port)
    try:
        call = first_call(f"ws://127.0.0.1:{port}", token, "exec.approvals.get")
        snapshot = await asyncio.wait_for(call, 60)
        assert snapshot["exists"] is False, log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
