"""`moltbot sessions [list|show KEY]`: read the session store (no gateway needed)."""

from __future__ import annotations

import asyncio
from typing import Any

import click

from moltbot.cli import context
from moltbot.cli.lazy import LazyGroup

_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group(
    cls=LazyGroup,
    default="list",
    epilog="\b\nExamples:\n  moltbot sessions\n  moltbot sessions list --agent ops "
    "--json\n  moltbot sessions show main --limit 20",
)
def sessions() -> None:
    """Chat sessions of this instance's agents (default: list)."""


def _stores(instance: Any, config: Any, agent: str | None) -> list[tuple[str, Any]]:
    from moltbot.agents.roster import agent_specs
    from moltbot.errors import NotFoundError
    from moltbot.sessions.store import SessionStore

    specs = agent_specs(config, instance)
    ids = [s.id for s in specs]
    if agent:
        if agent.lower() not in ids:
            raise NotFoundError(f"no agent {agent}; agents: {', '.join(ids)}")
        ids = [agent.lower()]
    return [(i, SessionStore(instance.sessions_dir(i))) for i in ids]


@sessions.command("list", epilog="\b\nExample:\n  moltbot --profile rescue sessions list --json")
@click.option("--agent", "agent_id", metavar="ID", help="Only this agent's sessions.")
@click.option("--limit", type=click.IntRange(1), help="At most this many (newest first).")
@_json
def list_cmd(agent_id: str | None, limit: int | None, as_json: bool) -> None:
    """Sessions, newest first: key, title, last activity, tokens."""
    from datetime import datetime

    from moltbot.sessions.transcript import peek

    cli = context.get()
    instance, snapshot = cli.load()
    rows: list[dict[str, Any]] = []
    for agent, store in _stores(instance, snapshot.config, agent_id):
        for key, entry in asyncio.run(store.all()).items():
            first, _ = peek(store.transcript_path(entry))
            rows.append(
                {
                    "key": key,
                    "agentId": agent,
                    **entry.dump(),
                    "title": " ".join((first or "").split())[:60] or None,
                }
            )
    rows.sort(key=lambda r: -int(r.get("updatedAt") or 0))
    rows = rows[:limit] if limit else rows
    if as_json:
        context.emit_json({"count": len(rows), "sessions": rows})
        return
    if not rows:
        click.echo("No sessions yet.")
        return
    for row in rows:
        when = datetime.fromtimestamp(row["updatedAt"] / 1000).strftime("%Y-%m-%d %H:%M")
        tokens = row.get("totalTokens") or 0
        title = row.get("label") or row.get("title") or ""
        click.echo(f"{when}  {row['key']:<32}  {tokens:>7} tok  {title}")


@sessions.command(
    "show",
    epilog="\b\nExamples:\n  moltbot sessions show main\n  "
    "moltbot sessions show agent:ops:main --json",
)
@click.argument("key")
@click.option(
    "--limit", type=click.IntRange(1), default=50, show_default=True, help="Last N messages."
)
@_json
def show_cmd(key: str, limit: int, as_json: bool) -> None:
    """Print the transcript of session KEY (exit 9 if there is no such session)."""
    from moltbot.agents.context import text_of
    from moltbot.agents.roster import default_agent_id
    from moltbot.errors import NotFoundError
    from moltbot.sessions.keys import agent_of, normalize_key

    cli = context.get()
    instance, snapshot = cli.load()
    canonical = normalize_key(key, default_agent_id(snapshot.config))
    ((_, store),) = _stores(instance, snapshot.config, agent_of(canonical))
    entry = asyncio.run(store.get(canonical))
    if entry is None:
        raise NotFoundError(f"no session {canonical}", hint="list them with `moltbot sessions`")
    read = asyncio.run(store.read(entry))
    from moltbot.sessions.transcript import ordered_messages

    messages = [e["message"] for e in ordered_messages(read.entries)][-limit:]
    for warning in read.warnings:
        context.warn(warning)
    if as_json:
        context.emit_json(
            {
                "key": canonical,
                "sessionId": entry.session_id,
                "file": str(store.transcript_path(entry)),
                "messages": messages,
            }
        )
        return
    for message in messages:
        role = message.get("role")
        if role == "toolResult":
            text = text_of(message.get("content"))
            flag = " (error)" if message.get("isError") else ""
            click.echo(
                click.style(
                    f"  ← {message.get('toolName')}{flag}: {' '.join(text.split())[:160]}", dim=True
                )
            )
            continue
        text = text_of(message.get("content"))
        stop = message.get("stopReason")
        suffix = f" [{stop}]" if stop in ("aborted", "error", "timeout", "injected") else ""
        if text or suffix:
            click.echo(f"{role}{suffix}: {text}")
        for block in message.get("content") or []:
            if isinstance(block, dict) and block.get("type") == "toolCall":
                args = ", ".join(
                    f"{k}={str(v)[:40]!s}" for k, v in (block.get("arguments") or {}).items()
                )
                click.echo(click.style(f"  → {block.get('name')}({args})", dim=True))


@sessions.command(
    "compact",
    epilog="\b\nExamples:\n  moltbot sessions compact main\n  "
    'moltbot sessions compact agent:ops:main --instructions "keep the decisions"\n'
    "\b\nExit codes: 0 done (or nothing to compact); 6 no gateway answered; 7 credentials "
    "refused; 1 no model could write the summary.",
)
@click.argument("key")
@click.option("--instructions", metavar="TEXT", help="What the summary should focus on.")
@click.option(
    "--keep-recent-tokens", type=click.IntRange(0), metavar="N", help="Recent tokens kept verbatim."
)
@context.target_options
def compact_cmd(
    key: str,
    instructions: str | None,
    keep_recent_tokens: int | None,
    url: str | None,
    token: str | None,
    password: str | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Summarise the older turns of session KEY now, through the running gateway
    (the model writes the summary; the transcript keeps every original line)."""
    from moltbot.gateway.sync_client import SyncGatewayClient
    from moltbot.gateway.target import resolve_target

    cli = context.get()
    instance, snapshot = cli.load()
    target = resolve_target(
        instance, snapshot.config, cli.env, url=url, token=token, password=password
    )
    params: dict[str, Any] = {"key": key}
    if instructions:
        params["instructions"] = instructions
    if keep_recent_tokens is not None:
        params["keepRecentTokens"] = keep_recent_tokens
    with SyncGatewayClient.for_target(target, max(timeout, 120.0)) as client:
        result = client.call("sessions.compact", params)
    if as_json:
        context.emit_json(result)
    elif result.get("compacted"):
        click.echo(
            f"compacted {result['key']}: {result.get('tokensBefore')} → "
            f"{result.get('tokensAfter')} tokens (entry {result.get('entryId')})"
        )
    else:
        click.echo(f"nothing to compact in {result['key']}: {result.get('reason')}")
