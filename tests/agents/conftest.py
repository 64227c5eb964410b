import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from moltbot.agents.runtime import AgentRuntime, embedded  # noqa: E402
from moltbot.config.schema import Config  # noqa: E402
from moltbot.instance.resolve import Invocation, resolve_identity, resolve_instance  # noqa: E402


class Events:
    """Collects broadcast events."""

    def __init__(self):
        self.items = []

    def __call__(self, event, payload=None, **kw):
        self.items.append((event, payload))

    def chat(self, run_id=None):
        return [
            p for e, p in self.items if e == "chat" and (run_id is None or p["runId"] == run_id)
        ]

    def agent(self, run_id=None, stream=None):
        return [
            p
            for e, p in self.items
            if e == "agent"
            and (run_id is None or p["runId"] == run_id)
            and (stream is None or p["stream"] == stream)
        ]


@pytest.fixture
def gateways():
    """``gateways(home, config, ...)``: a gateway started by ``gateway_agents.start``;
    every one started is stopped after the test."""
    from tests.agents.gateway_agents import start

    started = []

    def launch(*args, **kwargs):
        gw = start(*args, **kwargs)
        started.append(gw)
        return gw

    yield launch
    for gw in started:
        gw.stop()


@pytest.fixture
async def make_runtime(tmp_path):
    runtimes: list[AgentRuntime] = []

    async def make(
        config: dict | None = None, env: dict | None = None
    ) -> tuple[AgentRuntime, Events]:
        data = dict(config or {})
        data.setdefault("agents", {}).setdefault("defaults", {}).setdefault(
            "workspace", str(tmp_path / "workspace")
        )
        environ = {
            "HOME": str(tmp_path),
            "MOLTBOT_STATE_DIR": str(tmp_path / ".clawdbot"),
            "PATH": "/usr/bin:/bin",
            **(env or {}),
        }
        cfg = Config.model_validate(data)
        identity = resolve_identity(Invocation(), environ, tmp_path)
        instance = resolve_instance(identity, cfg, environ)
        events = Events()
        runtime = embedded(instance, cfg, environ, broadcast=events)
        await runtime.start()
        runtimes.append(runtime)
        return runtime, events

    yield make
    for runtime in runtimes:
        await runtime.stop()
