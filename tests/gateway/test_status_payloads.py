"""The typed ``status`` and ``health`` payloads (gateway/status.py): what the gateway
sends is exactly what upstream clients and the Control UI read, and what the CLI parses
back."""

from __future__ import annotations

import pytest

from gateway_harness import GatewayProcess
from moltbot.errors import MoltbotError
from moltbot.gateway.client import GatewayClient
from moltbot.gateway.status import (
    HealthPayload,
    InstanceStatus,
    SessionRow,
    SessionsSummary,
    StatusPayload,
    parse,
    wire,
)

# The keys clients read, in the order the gateway sends them.
STATUS_KEYS = [
    "instance",
    "heartbeat",
    "channelSummary",
    "queuedSystemEvents",
    "sessions",
    "subsystems",
    "connections",
]
INSTANCE_KEYS = [
    "profile",
    "stateDir",
    "configPath",
    "workspace",
    "port",
    "controlPort",
    "canvasPort",
    "cdpRange",
    "configured",
    "drift",
    "pid",
    "bind",
    "host",
    "version",
    "startedAt",
    "uptimeMs",
    "state",
]
HEALTH_KEYS = [
    "ok",
    "ts",
    "durationMs",
    "channels",
    "channelOrder",
    "channelLabels",
    "heartbeatSeconds",
    "defaultAgentId",
    "agents",
    "sessions",
]


async def test_the_gateway_sends_the_typed_payloads(gateway: GatewayProcess) -> None:
    async with GatewayClient(gateway.url, token=gateway.token) as client:
        status = await client.call("status")
        health = await client.call("health")
        probed = await client.call("health", {"probe": True})
    assert list(status) == STATUS_KEYS
    assert list(status["instance"]) == INSTANCE_KEYS
    assert list(status["instance"]["configured"]) == [
        "port",
        "controlPort",
        "canvasPort",
        "cdpRange",
    ]
    assert list(status["sessions"]) == ["paths", "count", "defaults", "recent", "byAgent"]
    assert list(status["sessions"]["defaults"]) == ["model", "contextTokens"]
    assert list(status["heartbeat"]) == ["defaultAgentId", "agents"]
    assert list(health) == HEALTH_KEYS == list(probed)
    assert list(health["agents"][0]) == ["agentId", "isDefault", "sessions"]
    assert list(health["sessions"]) == ["path", "count", "recent"]

    typed = parse(StatusPayload, status)
    assert typed.instance.pid == gateway.pid and typed.instance.port == gateway.port
    assert typed.instance.state == "running" and typed.instance.drift is None
    assert typed.instance.configured is not None
    assert typed.instance.configured.port == gateway.port
    assert wire(typed) == status  # nothing lost or added on the way back
    assert typed.subsystems["agents"]["state"] == "running"
    summary = parse(HealthPayload, health)
    assert summary.default_agent_id == "main" and summary.agents[0].is_default
    assert wire(summary) == health


def test_round_trip_and_refusals() -> None:
    summary = SessionsSummary("/x/sessions.json", 1, [SessionRow("agent:main:main", 5, None)])
    assert wire(summary) == {
        "path": "/x/sessions.json",
        "count": 1,
        "recent": [{"key": "agent:main:main", "updatedAt": 5, "age": None}],
    }
    assert parse(SessionsSummary, wire(summary) | {"later": "ignored"}) == summary

    with pytest.raises(MoltbotError, match=r"SessionsSummary.recent\[0\].updatedAt is str"):
        parse(
            SessionsSummary,
            {"path": "p", "count": 1, "recent": [{"key": "k", "updatedAt": "5", "age": 1}]},
        )
    with pytest.raises(MoltbotError, match="SessionsSummary.count is missing"):
        parse(SessionsSummary, {"path": "p", "recent": []})
    with pytest.raises(MoltbotError, match="SessionsSummary.count is bool"):
        parse(SessionsSummary, {"path": "p", "count": True, "recent": []})
    with pytest.raises(MoltbotError, match="not a StatusPayload: StatusPayload is list"):
        parse(StatusPayload, [])
    # an upstream gateway's status has no `instance`: not ours, said so
    with pytest.raises(MoltbotError, match="StatusPayload.instance is missing"):
        parse(StatusPayload, {"heartbeat": {"defaultAgentId": "main", "agents": []}})


def test_instance_facts_come_from_the_instance(home) -> None:
    from moltbot.config.schema import Config
    from moltbot.instance.resolve import Invocation, resolve_identity, resolve_instance

    identity = resolve_identity(Invocation(profile="rescue"), {}, home)
    instance = resolve_instance(identity, Config(), {})
    facts = InstanceStatus.of(instance, pid=42)
    assert wire(facts) == {
        **instance.facts(),
        "configured": None,
        "drift": None,
        "pid": 42,
        "bind": None,
        "host": None,
        "version": None,
        "startedAt": None,
        "uptimeMs": None,
        "state": None,
    }
