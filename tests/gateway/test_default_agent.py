"""The default agent is decided once (``agents.roster.default_agent_id``) and every
surface agrees: hello-ok, health, status, agents.list; session counts come from
each agent's session store."""

from __future__ import annotations

from pathlib import Path

from tests.agents.gateway_agents import write_config

from gateway_harness import CORE_ONLY, start_gateway, ws_client
from moltbot.agents.roster import default_agent_id
from moltbot.config.schema import Config
from moltbot.sessions.store import SessionStore

AGENTS = {"list": [{"id": "ops"}, {"id": "home", "default": True}, {"id": "spare"}]}


def test_default_agent_rule() -> None:
    assert default_agent_id(Config()) == "main"
    assert default_agent_id(Config.model_validate({"agents": AGENTS})) == "home"
    first = {"list": [{"id": "ops"}, {"id": "home"}]}
    assert default_agent_id(Config.model_validate({"agents": first})) == "ops"


async def seed(state: Path, agent: str, keys: list[str]) -> None:
    store = SessionStore(state / "agents" / agent / "sessions")
    for age, key in enumerate(keys):  # the first key is the oldest
        await store.ensure(key, updated_at=1_000_000 + age)


async def test_every_surface_names_the_configured_default(home: Path) -> None:
    write_config(home, "main", {"agents": AGENTS})
    state = home / ".clawdbot-main"
    await seed(state, "home", ["agent:home:main", "agent:home:a", "agent:home:b"])
    await seed(state, "ops", ["agent:ops:main"])
    gw = start_gateway(home, "main", env=CORE_ONLY)
    try:
        async with ws_client(gw.url, gw.token) as client:
            defaults = client.hello["snapshot"]["sessionDefaults"]
            assert defaults["defaultAgentId"] == "home"
            assert defaults["mainSessionKey"] == "agent:home:main"
            health = await client.call("health", {"probe": True})
            status = await client.call("status")
            listed = await client.call("agents.list")
    finally:
        gw.stop()
    assert health["defaultAgentId"] == "home"
    rows = {a["agentId"]: a for a in health["agents"]}
    assert [a["agentId"] for a in health["agents"]] == ["ops", "home", "spare"]
    assert [a for a, row in rows.items() if row["isDefault"]] == ["home"]
    assert health["sessions"]["count"] == 3
    assert health["sessions"]["path"].endswith("agents/home/sessions/sessions.json")
    assert rows["ops"]["sessions"]["count"] == 1 and rows["spare"]["sessions"]["count"] == 0
    assert [r["key"] for r in health["sessions"]["recent"]][-1] == "agent:home:main"
    assert status["heartbeat"]["defaultAgentId"] == "home"
    assert status["sessions"]["byAgent"][0]["agentId"] == "home"
    assert status["sessions"]["count"] == 3
    assert listed["defaultId"] == "home"
