"""Routing and session keys: pure functions, table tests from the reference."""

from __future__ import annotations

from typing import Any

import pytest

from moltbot.channels.routing import (
    Peer,
    RoutingTable,
    normalize_agent_id,
    resolve_route,
    session_key,
)
from moltbot.config.schema import Config, Session
from moltbot.config.store import validate
from moltbot.errors import ConfigError


def table(
    bindings: list[dict[str, Any]],
    agents: list[str] | None = None,
    session: dict[str, Any] | None = None,
    default: str | None = None,
) -> RoutingTable:
    entries = [
        {"id": a, **({"default": True} if a == default else {})}
        for a in (agents or ["main", "work", "ops", "family"])
    ]
    config = Config.model_validate(
        {"bindings": bindings, "agents": {"list": entries}, "session": session or {}}
    )
    return RoutingTable.from_config(config)


BINDINGS = [
    {"agentId": "family", "match": {"channel": "telegram", "peer": {"kind": "dm", "id": "111"}}},
    {"agentId": "ops", "match": {"channel": "slack", "teamId": "T1", "accountId": "*"}},
    {"agentId": "work", "match": {"channel": "telegram", "accountId": "work"}},
    {"agentId": "ops", "match": {"channel": "telegram"}},
    {"agentId": "family", "match": {"channel": "slack", "accountId": "*"}},
]


@pytest.mark.parametrize(
    ("channel", "account", "peer", "team", "agent", "matched_by"),
    [
        ("telegram", "default", Peer("dm", "111"), None, "family", "peer"),
        ("telegram", "default", Peer("dm", "222"), None, "ops", "account"),  # no accountId: default
        ("telegram", "work", Peer("dm", "222"), None, "work", "account"),
        ("telegram", "other", Peer("dm", "222"), None, "main", "default"),  # no binding for "other"
        ("TELEGRAM", None, Peer("group", "-5"), None, "ops", "account"),
        ("slack", "any", Peer("channel", "C1"), "T1", "ops", "team"),
        ("slack", "any", Peer("channel", "C1"), "T2", "family", "channel"),
        ("discord", "default", Peer("dm", "1"), None, "main", "default"),
    ],
)
def test_binding_precedence(
    channel: str, account: str | None, peer: Peer, team: str | None, agent: str, matched_by: str
) -> None:
    route = resolve_route(
        table(BINDINGS), channel=channel, account_id=account, peer=peer, team_id=team
    )
    assert (route.agent_id, route.matched_by) == (agent, matched_by)


def test_peer_beats_account_even_when_listed_later() -> None:
    bindings = [
        {"agentId": "work", "match": {"channel": "telegram"}},
        {
            "agentId": "family",
            "match": {"channel": "telegram", "peer": {"kind": "direct", "id": 111}},
        },
    ]
    route = resolve_route(
        table(bindings), channel="telegram", account_id="default", peer=Peer("dm", "111")
    )
    assert route.agent_id == "family" and route.matched_by == "peer"


def test_unknown_agent_falls_back_to_default() -> None:
    bindings = [{"agentId": "ghost", "match": {"channel": "telegram"}}]
    route = resolve_route(
        table(bindings, default="work"), channel="telegram", account_id=None, peer=Peer("dm", "1")
    )
    assert route.agent_id == "work" and route.matched_by == "default"
    assert route.session_key == "agent:work:main"


def test_default_agent_without_agent_list() -> None:
    empty = RoutingTable.from_config(Config())
    route = resolve_route(empty, channel="telegram", account_id=None, peer=Peer("dm", "1"))
    assert (route.agent_id, route.session_key, route.main_session_key) == (
        "main",
        "agent:main:main",
        "agent:main:main",
    )


S = Session


@pytest.mark.parametrize(
    ("session", "peer", "thread", "key"),
    [
        (S(), Peer("dm", "U1ABC"), None, "agent:main:main"),
        (S(main_key="home"), Peer("dm", "1"), None, "agent:main:home"),
        (S(dm_scope="per-peer"), Peer("dm", "U1ABC"), None, "agent:main:dm:u1abc"),
        (S(dm_scope="per-channel-peer"), Peer("dm", "42"), None, "agent:main:slack:dm:42"),
        (
            S(dm_scope="per-account-channel-peer"),
            Peer("dm", "42"),
            None,
            "agent:main:slack:work:dm:42",
        ),
        (S(), Peer("group", "-100123:topic:42"), None, "agent:main:slack:group:-100123:topic:42"),
        (S(), Peer("channel", "C0GEN"), "1700.01", "agent:main:slack:channel:c0gen:thread:1700.01"),
        (
            S(dm_scope="per-peer", identity_links={"alice": ["slack:42", "telegram:7"]}),
            Peer("dm", "42"),
            None,
            "agent:main:dm:alice",
        ),
        (S(identity_links={"alice": ["slack:42"]}), Peer("dm", "42"), None, "agent:main:main"),
    ],
)
def test_session_keys(session: Session, peer: Peer, thread: str | None, key: str) -> None:
    assert session_key(session, "Main", "Slack", "work", peer, thread_id=thread) == key


def test_session_scope_from_config() -> None:
    routing = table([], session={"dmScope": "per-channel-peer"})
    route = resolve_route(
        routing, channel="telegram", account_id="default", peer=Peer("dm", "4242")
    )
    assert route.session_key == "agent:main:telegram:dm:4242"
    assert route.main_session_key == "agent:main:main"


def test_agent_ids_are_normalized() -> None:
    assert normalize_agent_id("  Work Bot!! ") == "work-bot"
    assert normalize_agent_id("") == "main"
    assert len(normalize_agent_id("x" * 100)) == 64


def test_invalid_bindings_and_session_are_config_errors() -> None:
    """The schema owns ``bindings`` and ``session``: a bad one is refused with the file,
    and a misspelt key is reported, not silently ignored."""
    bad = {"bindings": [{"agentId": "x"}], "session": {"dmScope": "per-person"}}
    with pytest.raises(ConfigError) as caught:
        validate(bad, {}, "moltbot.json")
    assert "bindings[0].match: required key is missing" in caught.value.message
    assert "session.dmScope: expected 'main', 'per-peer'" in caught.value.message
    _, warnings = validate({"session": {"dmScop": "per-peer"}}, {}, "moltbot.json")
    assert warnings == ("moltbot.json: unknown key session.dmScop (ignored)",)
