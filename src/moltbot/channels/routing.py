"""Routing: (channel, account, peer) → agent and session key. Pure functions.

Bindings (top-level ``bindings`` list) are tried by tier; within a tier the
first matching binding wins:

1. ``peer``     – ``match.peer`` {kind, id} equals the conversation;
2. ``guild``    – ``match.guildId`` (Discord servers);
3. ``team``     – ``match.teamId`` (Slack workspaces);
4. ``account``  – no peer/guild/team, ``match.accountId`` names this account;
5. ``channel``  – no peer/guild/team, ``match.accountId == "*"``.

A binding without ``accountId`` matches only the ``default`` account; ``"*"``
matches every account. Without a match (or when the bound agent does not
exist) the default agent handles the message: the ``agents.list`` entry with
``default: true``, else the first entry, else ``main``.

Session keys (always lower-case)::

    agent:<agent>:<mainKey>                           DMs, session.dmScope "main" (default)
    agent:<agent>:dm:<peer>                           dmScope "per-peer"
    agent:<agent>:<channel>:dm:<peer>                 dmScope "per-channel-peer"
    agent:<agent>:<channel>:<account>:dm:<peer>       dmScope "per-account-channel-peer"
    agent:<agent>:<channel>:group:<id>                groups (Telegram topics: <chat>:topic:<tid>)
    agent:<agent>:<channel>:channel:<id>              Slack channels
    <key>:thread:<id>                                 threads (Slack)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from moltbot.channels.config import DEFAULT_ACCOUNT_ID
from moltbot.config.schema import Binding, Config, PeerKind, Session

MatchedBy = Literal["peer", "guild", "team", "account", "channel", "default"]

DEFAULT_AGENT = "main"
DEFAULT_MAIN_KEY = "main"
_AGENT_ID = re.compile(r"[^a-z0-9_-]+")


def normalize_agent_id(value: str | None) -> str:
    """Agent ids are ``[a-z0-9][a-z0-9_-]{0,63}``; anything else is folded into that."""
    text = _AGENT_ID.sub("-", (value or "").strip().lower()).strip("-_")[:64]
    return text or DEFAULT_AGENT


@dataclass(frozen=True)
class Peer:
    kind: PeerKind
    id: str


@dataclass(frozen=True)
class Route:
    agent_id: str
    channel: str
    account_id: str
    session_key: str
    main_session_key: str
    matched_by: MatchedBy


@dataclass(frozen=True)
class RoutingTable:
    """Everything routing needs from the config, parsed once."""

    bindings: tuple[Binding, ...] = ()
    agent_ids: tuple[str, ...] = ()
    default_agent: str = DEFAULT_AGENT
    session: Session = field(default_factory=Session)

    @classmethod
    def from_config(cls, config: Config) -> RoutingTable:
        """Build from a Config: ``bindings``, ``agents.list`` and ``session``."""
        entries = config.agents.entries
        ids = tuple(normalize_agent_id(entry.id) for entry in entries)
        default = next(
            (normalize_agent_id(e.id) for e in entries if e.default),
            ids[0] if ids else DEFAULT_AGENT,
        )
        return cls(tuple(config.bindings), ids, default, config.session)


def _account_matches(binding_account: str | None, account_id: str) -> bool:
    if binding_account is None or binding_account == "":
        return account_id == DEFAULT_ACCOUNT_ID
    return binding_account == "*" or binding_account.lower() == account_id.lower()


def resolve_route(
    table: RoutingTable,
    *,
    channel: str,
    account_id: str | None,
    peer: Peer,
    guild_id: str | None = None,
    team_id: str | None = None,
    thread_id: str | None = None,
) -> Route:
    channel = channel.lower()
    account = (account_id or DEFAULT_ACCOUNT_ID).lower()
    kept = [
        b
        for b in table.bindings
        if b.match.channel.lower() == channel and _account_matches(b.match.account_id, account)
    ]

    def first(tier: Iterable[Binding]) -> Binding | None:
        return next(iter(tier), None)

    tiers: Sequence[tuple[MatchedBy, Iterable[Binding]]] = (
        (
            "peer",
            (
                b
                for b in kept
                if b.match.peer and b.match.peer.kind == peer.kind and b.match.peer.id == peer.id
            ),
        ),
        ("guild", (b for b in kept if guild_id and b.match.guild_id == guild_id)),
        ("team", (b for b in kept if team_id and b.match.team_id == team_id)),
        ("account", (b for b in kept if _is_plain(b) and b.match.account_id != "*")),
        ("channel", (b for b in kept if _is_plain(b) and b.match.account_id == "*")),
    )
    agent, matched_by = table.default_agent, "default"
    for tier_name, candidates in tiers:
        found = first(candidates)
        if found is not None:
            agent, matched_by = normalize_agent_id(found.agent_id), tier_name
            break
    known = table.agent_ids or (table.default_agent,)
    if agent not in known:
        agent, matched_by = table.default_agent, "default"
    return build_route(
        table.session, agent, channel, account, peer, matched_by, thread_id=thread_id
    )


def _is_plain(binding: Binding) -> bool:
    match = binding.match
    return match.peer is None and not match.guild_id and not match.team_id


def build_route(
    session: Session,
    agent_id: str,
    channel: str,
    account_id: str,
    peer: Peer,
    matched_by: MatchedBy,
    *,
    thread_id: str | None = None,
) -> Route:
    main = main_session_key(agent_id, session.main_key)
    key = session_key(session, agent_id, channel, account_id, peer, thread_id=thread_id)
    return Route(agent_id, channel, account_id, key, main, matched_by)


def with_agent(
    route: Route, session: Session, agent_id: str, peer: Peer, thread_id: str | None = None
) -> Route:
    """The same route for another agent (when the agents subsystem resolved a different id)."""
    if agent_id == route.agent_id:
        return route
    rebuilt = build_route(
        session,
        agent_id,
        route.channel,
        route.account_id,
        peer,
        route.matched_by,
        thread_id=thread_id,
    )
    return replace(rebuilt, matched_by="default")


def main_session_key(agent_id: str, main_key: str = DEFAULT_MAIN_KEY) -> str:
    return f"agent:{normalize_agent_id(agent_id)}:{main_key or DEFAULT_MAIN_KEY}".lower()


def session_key(
    session: Session,
    agent_id: str,
    channel: str,
    account_id: str,
    peer: Peer,
    *,
    thread_id: str | None = None,
) -> str:
    agent = normalize_agent_id(agent_id)
    channel = channel.lower()
    if peer.kind == "dm":
        peer_id = _linked_identity(session.identity_links, channel, peer.id)
        scope = session.dm_scope
        if scope == "main":
            base = main_session_key(agent, session.main_key)
        elif scope == "per-peer":
            base = f"agent:{agent}:dm:{peer_id}"
        elif scope == "per-channel-peer":
            base = f"agent:{agent}:{channel}:dm:{peer_id}"
        else:
            base = f"agent:{agent}:{channel}:{account_id}:dm:{peer_id}"
    else:
        base = f"agent:{agent}:{channel}:{peer.kind}:{peer.id}"
    if thread_id:
        base = f"{base}:thread:{thread_id}"
    return base.lower()


def _linked_identity(links: Mapping[str, list[str]], channel: str, peer_id: str) -> str:
    wanted = f"{channel}:{peer_id}".lower()
    for canonical, members in links.items():
        if any(str(member).lower() == wanted for member in members):
            return canonical
    return peer_id
