"""`moltbot agent`, `moltbot agents`, `moltbot sessions` as real subprocesses."""

from __future__ import annotations

import asyncio
import json
import socket
import sys

from tests.agents.gateway_agents import start, write_config
from tests.fakes.llm_openai import openai_config
from tests.fakes.llm_script import Reply

from gateway_harness import moltbot_env


async def moltbot(home, *args, env=None, timeout=60):
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "moltbot",
        "--profile",
        "main",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=moltbot_env(home, env),
        cwd=home,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode, out.decode(), err.decode()


async def test_agent_local_streams_and_records(home, llm):
    write_config(home, "main", openai_config(llm.base_url))
    llm.push(
        Reply("", tool_calls=[("write", {"path": "hi.txt", "content": "x"})]),
        Reply("Done writing.", chunk_chars=3),
    )
    code, out, err = await moltbot(home, "agent", "-m", "write hi.txt", "--local")
    assert code == 0, err
    assert out.strip() == "Done writing." and "[write]" in err
    assert (home / "clawd-main" / "hi.txt").read_text() == "x"
    code, out, _ = await moltbot(home, "sessions", "--json")
    rows = json.loads(out)["sessions"]
    assert rows[0]["key"] == "agent:main:main" and rows[0]["title"] == "write hi.txt"
    code, out, _ = await moltbot(home, "sessions", "show", "main")
    assert "user: write hi.txt" in out and "→ write(" in out and "assistant: Done writing." in out
    code, out, err = await moltbot(home, "sessions", "show", "agent:main:nope")
    assert code == 9 and "no session" in err
    code, out, _ = await moltbot(home, "agent", "-m", "again", "--local", "--json")
    assert json.loads(out)["text"] == "echo: again"


async def test_agent_through_the_gateway(home, llm):
    gw = start(home, openai_config(llm.base_url))
    try:
        llm.push(Reply("streamed reply", chunk_chars=2, chunk_delay=0.01))
        code, out, err = await moltbot(
            home, "agent", "--message", "hello gateway", "--session", "agent:main:cli"
        )
        assert code == 0, err
        assert out.strip() == "streamed reply"
        code, out, err = await moltbot(home, "agent", "-m", "x", "--agent", "ghost")
        assert code == 1 and "unknown agent" in err
    finally:
        gw.stop()
    with socket.socket() as probe:  # a port nobody listens on (the old one may be reused)
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    code, out, err = await moltbot(
        home, "agent", "-m", "anyone?", "--url", f"ws://127.0.0.1:{closed}"
    )
    assert code == 6 and "--local" in err


async def test_agents_add_list_remove(home):
    write_config(home, "main", {})
    code, out, err = await moltbot(home, "agents", "add", "ops", "--model", "openai/gpt-4o")
    assert code == 0, err
    code, out, _ = await moltbot(home, "agents", "list", "--json")
    agents = {a["id"]: a for a in json.loads(out)["agents"]}
    assert set(agents) == {"main", "ops"} and agents["main"]["default"]
    assert agents["ops"]["model"] == "openai/gpt-4o"
    assert (home / "clawd-main-ops" / "SOUL.md").exists()
    code, _, err = await moltbot(home, "agents", "add", "ops")
    assert code == 3 and "already exists" in err
    code, out, _ = await moltbot(home, "agents", "remove", "ops")
    assert code == 0
    code, _, err = await moltbot(home, "agents", "remove", "ops")
    assert code == 9
    code, out, _ = await moltbot(home, "agents", "--help")
    assert "Examples" in out
