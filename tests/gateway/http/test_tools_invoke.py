"""``POST /tools/invoke`` of a real gateway subprocess: the agent's tools, under its
tool policy and confinement, behind the gateway token; off by default."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.agents.gateway_agents import start
from tests.fakes.llm_openai import FakeOpenAI, openai_config

from gateway_harness import GatewayProcess


def config(llm: FakeOpenAI, enabled: bool = True, **tools: Any) -> dict[str, Any]:
    data = openai_config(llm.base_url)
    data["gateway"] = {
        "http": {"endpoints": {"toolsInvoke": {"enabled": enabled, "maxBodyBytes": 4096}}},
        "auth": {"rateLimit": {"attempts": 1000}},
    }
    data["tools"] = {"deny": ["exec"], **tools}
    return data


@pytest.fixture
def gateway(home: Path, llm: FakeOpenAI) -> Iterator[GatewayProcess]:
    gw = start(home, config(llm))
    yield gw
    gw.stop()


async def invoke(gw: GatewayProcess, body: Any, token: str | None = None, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token or gw.token}", **kw.pop("headers", {})}
    data = body if isinstance(body, bytes) else json.dumps(body)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gw.http}/tools/invoke", data=data, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


async def test_runs_a_tool_in_the_agents_workspace(gateway: GatewayProcess, home: Path) -> None:
    status, body = await invoke(
        gateway, {"tool": "write", "args": {"path": "notes/todo.md", "content": "milk"}}
    )
    assert (status, body["ok"]) == (200, True), body
    assert (home / "clawd-main" / "notes" / "todo.md").read_text() == "milk"
    status, body = await invoke(gateway, {"tool": "read", "args": {"path": "notes/todo.md"}})
    assert status == 200 and "milk" in json.dumps(body["result"])
    status, body = await invoke(
        gateway, {"tool": "write", "args": {"path": "x.md", "content": "y"}, "dryRun": True}
    )
    assert body == {
        "ok": True,
        "dryRun": True,
        "tool": "write",
        "args": {"path": "x.md", "content": "y"},
    }
    assert not (home / "clawd-main" / "x.md").exists()


async def test_policy_confinement_and_errors(gateway: GatewayProcess, home: Path) -> None:
    assert await invoke(gateway, {"tool": "exec", "args": {"command": "id"}}) == (
        404,
        {"ok": False, "error": {"type": "not_found", "message": "Tool not available: exec"}},
    )
    assert (await invoke(gateway, {"tool": "teleport"}))[0] == 404
    status, body = await invoke(
        gateway, {"tool": "read", "args": {"path": "../.clawdbot-main/moltbot.json"}}
    )
    assert (status, body["error"]["type"]) == (400, "tool_error")
    status, body = await invoke(gateway, {"tool": "read", "args": {}})
    assert (status, body["error"]["type"]) == (400, "tool_error")
    assert (await invoke(gateway, {"args": {}}))[1]["error"][
        "message"
    ] == "tools.invoke requires body.tool"
    status, body = await invoke(gateway, {"tool": "read", "sessionKey": "agent:ops:main"})
    assert status == 400
    status, body = await invoke(gateway, b"x" * 5000)
    assert status == 413 and "toolsInvoke.maxBodyBytes" in body["error"]["message"]
    status, body = await invoke(gateway, {"tool": "read"}, token="wrong")
    assert status == 401


async def test_off_by_default(home: Path, llm: FakeOpenAI) -> None:
    gw = start(home, config(llm, enabled=False))
    try:
        status, body = await invoke(gw, {"tool": "read", "args": {"path": "AGENTS.md"}})
        assert status == 404 and body["error"]["code"] == "endpoint_disabled"
    finally:
        gw.stop()
