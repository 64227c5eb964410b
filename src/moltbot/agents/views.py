"""What the gateway's read methods return: ``agents.list`` rows, ``sessions.list``
rows and ``chat.history``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from moltbot.agents import context as ctxmod
from moltbot.agents.models import ModelRef
from moltbot.agents.prompt import read_identity
from moltbot.agents.roster import AgentSpec
from moltbot.agents.run import now_ms
from moltbot.errors import UsageError
from moltbot.sessions.keys import kind_of
from moltbot.sessions.store import SessionEntry, SessionStore
from moltbot.sessions.transcript import peek

HISTORY_MAX_BYTES = 6 * 1024 * 1024


def agent_rows(
    specs: Iterable[AgentSpec], chain_of: Callable[[str], list[ModelRef]]
) -> list[dict[str, Any]]:
    """One row per agent: id, name, identity (from IDENTITY.md), workspace, model."""
    rows = []
    for spec in specs:
        identity = read_identity(spec.workspace)
        row: dict[str, Any] = {"id": spec.id}
        name = spec.name or identity.name
        if name:
            row["name"] = name
        if identity.as_dict():
            row["identity"] = identity.as_dict()
        row["workspace"] = str(spec.workspace)
        row["default"] = spec.default
        chain = chain_of(spec.id)
        if chain:
            row["model"] = str(chain[0])
        rows.append(row)
    return rows


async def session_rows(
    agents: Iterable[str],
    store_of: Callable[[str], SessionStore],
    *,
    limit: int | None = None,
    active_minutes: int | None = None,
    search: str | None = None,
    label: str | None = None,
    titles: bool = False,
    last_message: bool = False,
) -> list[dict[str, Any]]:
    """The agents' sessions, newest first; ``titles`` / ``last_message`` read each
    listed transcript's first and last message. Filters and the sort run on the index
    entries; only the rows returned are built, so ``limit`` bounds the work per row."""
    found: list[tuple[str, str, SessionEntry]] = []
    cutoff = now_ms() - active_minutes * 60_000 if active_minutes else None
    needle = search.lower() if search else None
    for agent in agents:
        store = store_of(agent)
        for key, entry in (await store.all()).items():
            if cutoff and entry.updated_at < cutoff:
                continue
            if label and entry.label != label:
                continue
            if needle and not (
                needle in key
                or needle in (entry.label or "").lower()
                or needle in (entry.display_name or "").lower()
            ):
                continue
            found.append((agent, key, entry))
    found.sort(key=lambda item: -item[2].updated_at)
    if limit:
        found = found[:limit]
    rows = [_session_row(agent, key, entry) for agent, key, entry in found]
    if titles or last_message:
        for row in rows:
            store = store_of(row["agentId"])
            first, last = await asyncio.to_thread(peek, store.directory / row.pop("_file"))
            if titles and first:
                row["derivedTitle"] = _title(first)
            if last_message and last:
                row["lastMessagePreview"] = _title(ctxmod.text_of(last.get("content")), 120)
    for row in rows:
        row.pop("_file", None)
    return rows


async def history(
    store: SessionStore, key: str, limit: int, before: str | None = None
) -> dict[str, Any]:
    """The session's last ``limit`` messages (with ``before``, a message id: the last
    ``limit`` before that one), the oldest dropped beyond :data:`HISTORY_MAX_BYTES` of
    JSON. ``hasMore`` says whether older messages remain: page back with the first
    returned message's id as ``before``."""
    entry = await store.get(key)
    if entry is None:
        return {"sessionKey": key, "messages": [], "hasMore": False}
    messages = await store.recent_messages(entry, limit, before=before)
    if before is not None:
        at = next((i for i, m in enumerate(messages) if m.get("id") == before), None)
        if at is None:
            raise UsageError(f"before: no message {before!r} in this session")
        messages = messages[:at]
    # only the page is converted (a page far back reads many more messages than it shows);
    # CPU-bound for a big transcript: off the event loop, so other clients keep being served
    items = await asyncio.to_thread(_history_items, messages[-limit:], limit)
    out: dict[str, Any] = {
        "sessionKey": key,
        "sessionId": entry.session_id,
        "messages": items,
        "hasMore": len(items) < len(messages),
    }
    if entry.thinking_level:
        out["thinkingLevel"] = entry.thinking_level
    return out


def _history_items(messages: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    items = [i for i in (ctxmod.history_item(e) for e in messages) if i][-limit:]
    size = sum(len(json.dumps(i, default=str)) for i in items)
    while items and size > HISTORY_MAX_BYTES:
        size -= len(json.dumps(items.pop(0), default=str))
    return items


def _session_row(agent: str, key: str, entry: SessionEntry) -> dict[str, Any]:
    data = entry.dump()
    row: dict[str, Any] = {"key": key, "agentId": agent, "kind": kind_of(key), **data}
    row["_file"] = (
        Path(entry.session_file).name if entry.session_file else f"{entry.session_id}.jsonl"
    )
    return row


def _title(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
