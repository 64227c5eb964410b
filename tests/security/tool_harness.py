"""Driving the real agent tools the way a model does: a stand-in LLM asks for tool calls,
the real runtime runs them, and the test reads the results back from the transcript."""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.agents.gateway_agents import is_chat  # noqa: E402
from tests.agents.gateway_agents import start as start_gateway  # noqa: E402
from tests.fakes.llm_openai import FakeOpenAI, openai_config  # noqa: E402
from tests.fakes.llm_script import Reply  # noqa: E402

from moltbot.agents.runtime import AgentRuntime, embedded  # noqa: E402
from moltbot.config.schema import Config  # noqa: E402
from moltbot.instance.resolve import Invocation, resolve_identity, resolve_instance  # noqa: E402

__all__ = [
    "Agent",
    "agent",
    "gateways",
    "llm",
    "FakeOpenAI",
    "Reply",
    "ToolResult",
    "is_chat",
    "make_other_instance",
    "needs_bwrap",
    "openai_config",
    "start_agent",
    "start_gateway",
]

needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="needs Debian bubblewrap (installed by .ci/run)"
)


@dataclass
class ToolResult:
    name: str
    text: str
    is_error: bool


@dataclass
class Agent:
    """An embedded runtime whose model is a scripted stand-in."""

    runtime: AgentRuntime
    llm: FakeOpenAI
    home: Path
    workspace: Path
    state_dir: Path

    async def call_tools(self, *calls: tuple[str, dict[str, Any]]) -> list[ToolResult]:
        """One turn in which the model asks for ``calls``; their results, in order."""
        self.llm.push(Reply("", tool_calls=list(calls)), Reply("done"))
        session = f"s-{uuid.uuid4().hex[:8]}"
        reply = await self.runtime.respond("main", session, "go")
        assert reply == "done", reply
        store = self.runtime.store("main")
        entry = await store.get(f"agent:main:{session}")
        assert entry is not None
        messages = [e["message"] for e in await store.messages(entry)]
        return [
            ToolResult(m["toolName"], m["content"][0]["text"], m["isError"])
            for m in messages
            if m["role"] == "toolResult"
        ]

    async def exec(self, command: str, **extra: Any) -> ToolResult:
        (result,) = await self.call_tools(("exec", {"command": command, **extra}))
        return result


async def start_agent(
    home: Path, llm: FakeOpenAI, config: dict[str, Any] | None = None, *, token: str = "OWN-TOKEN"
) -> Agent:
    """A runtime for the default instance in ``home`` (``~/.clawdbot``, workspace
    ``~/clawd`` unless ``config`` says otherwise); its config file holds ``token``."""
    data = openai_config(llm.base_url)
    for key, value in (config or {}).items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = _merge(data[key], value)
        else:
            data[key] = value
    data.setdefault("agents", {}).setdefault("defaults", {}).setdefault(
        "workspace", str(home / "clawd")
    )
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    state = home / ".clawdbot"
    state.mkdir(exist_ok=True, mode=0o700)
    (state / "moltbot.json").write_text(json.dumps({**data, "gateway": {"auth": {"token": token}}}))
    cfg = Config.model_validate(data)
    identity = resolve_identity(Invocation(), env, home)
    instance = resolve_instance(identity, cfg, env)
    runtime = embedded(instance, cfg, env)
    await runtime.start()
    return Agent(runtime, llm, home, runtime.workspace("main"), instance.state_dir)


def make_other_instance(home: Path, profile: str, token: str) -> Path:
    """Another instance on the host: ``~/.clawdbot-<profile>`` with a config holding
    ``token`` and a workspace ``~/clawd-<profile>`` with a private note."""
    state = home / f".clawdbot-{profile}"
    state.mkdir(mode=0o700)
    (state / "moltbot.json").write_text(json.dumps({"gateway": {"auth": {"token": token}}}))
    workspace = home / f"clawd-{profile}"
    workspace.mkdir()
    (workspace / "MEMORY.md").write_text(f"private memory of {profile}: {token}\n")
    return state


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture
async def llm() -> Any:
    """A stand-in OpenAI-compatible model server."""
    async with FakeOpenAI(api_key="sk-test") as server:
        yield server


@pytest.fixture
async def agent(home: Path, llm: FakeOpenAI) -> Any:
    """``await agent(config)``: a started :class:`Agent` whose workspace holds ``f.txt``."""
    started: list[Agent] = []

    async def start(config: dict[str, Any] | None = None, **kwargs: Any) -> Agent:
        made = await start_agent(home, llm, config, **kwargs)
        started.append(made)
        (made.workspace / "f.txt").write_text("banana\napple\n")
        return made

    yield start
    for made in started:
        await made.runtime.stop()


@pytest.fixture
def gateways() -> Any:
    """``gateways(home, config)``: a gateway subprocess (stopped afterwards)."""
    started = []

    def launch(*args: Any, **kwargs: Any) -> Any:
        gw = start_gateway(*args, **kwargs)
        started.append(gw)
        return gw

    yield launch
    for gw in started:
        gw.stop()
