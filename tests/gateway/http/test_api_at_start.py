"""The gateway's port answers before its sidecars (the agents among them) have
started. An HTTP API request that arrives in that moment waits for them, as a
WebSocket request does, instead of being refused with 503."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.agents.gateway_agents import write_config

from gateway_harness import free_port_block, launch_gateway


async def first_answer(url: str, token: str, body: dict[str, object]) -> tuple[int, Any]:
    """POST ``body`` to ``url`` as soon as the port accepts a connection."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.post(url, json=body, headers=headers) as response:
                    return response.status, await response.json(content_type=None)
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.002)


HOOK_TOKEN = "hook-secret-for-the-start-test"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/tools/invoke", {"tool": "sessions_list", "args": {}}),  # the agents' tools
        ("/hooks/wake", {"text": "the build finished"}),  # the agents and heartbeats
    ],
)
async def test_an_api_request_sent_as_the_port_opens_waits_for_the_sidecars(
    home: Path, path: str, body: dict[str, object]
) -> None:
    config = {
        "gateway": {"http": {"endpoints": {"toolsInvoke": {"enabled": True}}}},
        "hooks": {"enabled": True, "token": HOOK_TOKEN},
    }
    written = write_config(home, "main", config)
    token = json.loads(written.read_text())["gateway"]["auth"]["token"]
    port = free_port_block()
    proc, log = launch_gateway(home, "main", port=port)
    try:
        bearer = HOOK_TOKEN if path.startswith("/hooks") else token
        answer = first_answer(f"http://127.0.0.1:{port}{path}", bearer, body)
        status, got = await asyncio.wait_for(answer, 60)
        assert status == 200, (got, log.read_text())
        assert got["ok"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
