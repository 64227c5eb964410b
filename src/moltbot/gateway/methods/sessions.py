"""``sessions.list``, ``sessions.preview``, ``sessions.patch``, ``sessions.reset``,
``sessions.delete``, ``sessions.compact``."""

from __future__ import annotations

from typing import Any, Literal

from moltbot.errors import MoltbotError, UsageError
from moltbot.gateway.methods.agents import agents_of
from moltbot.gateway.methods.registry import MethodCall, Params, method
from moltbot.sessions.keys import main_key
from moltbot.sessions.store import SessionEntry, now_ms
from moltbot.validation import Field


class SessionsListParams(Params):
    limit: int | None = Field(default=None, ge=1)
    activeMinutes: int | None = Field(default=None, ge=1)
    includeGlobal: bool | None = None
    includeUnknown: bool | None = None
    includeDerivedTitles: bool | None = None
    includeLastMessage: bool | None = None
    label: str | None = None
    spawnedBy: str | None = None
    agentId: str | None = None
    search: str | None = None


@method("sessions.list", params=SessionsListParams, scope="read", bulky=True)
async def sessions_list(call: MethodCall, params: SessionsListParams) -> dict[str, Any]:
    runtime = await agents_of(call)
    rows = await runtime.list_sessions(
        params.agentId,
        limit=params.limit,
        active_minutes=params.activeMinutes,
        search=params.search,
        label=params.label,
        titles=bool(params.includeDerivedTitles),
        last_message=bool(params.includeLastMessage),
    )
    if params.spawnedBy:
        rows = [r for r in rows if r.get("spawnedBy") == params.spawnedBy]
    default = runtime.resolve_agent(params.agentId)
    status = runtime.status()
    model = status.get("model") or ""
    provider, _, model_id = model.partition("/")
    return {
        "ts": now_ms(),
        "path": str(runtime.store(default).index_path),
        "count": len(rows),
        "defaults": {
            "modelProvider": provider or None,
            "model": model_id or None,
            "contextTokens": None,
        },
        "sessions": rows,
    }


class SessionsPreviewParams(Params):
    keys: list[str] = Field(min_length=1)
    limit: int = Field(default=12, ge=1, le=200)
    maxChars: int = Field(default=240, ge=20)


@method("sessions.preview", params=SessionsPreviewParams, scope="read", bulky=True)
async def sessions_preview(call: MethodCall, params: SessionsPreviewParams) -> dict[str, Any]:
    from moltbot.agents.context import text_of  # the agents' own module, loaded with them

    runtime = await agents_of(call)
    previews = []
    for raw in params.keys:
        try:
            agent_id, key = runtime.session_key(raw)
            entry = await runtime.store(agent_id).get(key)
            if entry is None:
                previews.append({"key": raw, "status": "missing", "items": []})
                continue
            history = await runtime.history(key, params.limit)
        except MoltbotError as exc:
            previews.append({"key": raw, "status": "error", "items": [], "error": exc.message})
            continue
        items = []
        for message in history["messages"]:
            text = text_of(message.get("content"))
            if message.get("role") in ("user", "assistant") and text:
                short = text if len(text) <= params.maxChars else text[: params.maxChars - 1] + "…"
                items.append({"role": message["role"], "text": short})
        previews.append({"key": key, "status": "ok" if items else "empty", "items": items})
    return {"ts": now_ms(), "previews": previews}


Level = str | None


class SessionsPatchParams(Params):
    key: str = Field(min_length=1)
    label: str | None = Field(default=None, max_length=100)
    thinkingLevel: Level = None
    verboseLevel: Level = None
    reasoningLevel: Level = None
    responseUsage: Literal["off", "tokens", "full", "on"] | None = None
    elevatedLevel: Level = None
    execHost: Level = None
    execSecurity: Literal["deny", "allowlist", "full"] | None = None
    execAsk: Level = None
    execNode: Level = None
    model: str | None = None
    spawnedBy: str | None = None
    sendPolicy: Literal["allow", "deny"] | None = None
    groupActivation: Literal["mention", "always"] | None = None


_PATCH_FIELDS = {
    "label": "label",
    "thinkingLevel": "thinking_level",
    "verboseLevel": "verbose_level",
    "reasoningLevel": "reasoning_level",
    "responseUsage": "response_usage",
    "elevatedLevel": "elevated_level",
    "execHost": "exec_host",
    "execSecurity": "exec_security",
    "execAsk": "exec_ask",
    "execNode": "exec_node",
    "model": "model_override",
    "spawnedBy": "spawned_by",
    "sendPolicy": "send_policy",
    "groupActivation": "group_activation",
}


@method("sessions.patch", params=SessionsPatchParams, scope="admin")
async def sessions_patch(call: MethodCall, params: SessionsPatchParams) -> dict[str, Any]:
    """Set fields of a session (``null`` clears one); creates the session if needed."""
    runtime = await agents_of(call)
    agent_id, key = runtime.session_key(params.key)
    if params.model:
        from moltbot.agents.models import parse_ref

        params.model = str(parse_ref(params.model, runtime.config))
    store = runtime.store(agent_id)
    await store.ensure(key)
    changes = {
        _PATCH_FIELDS[name]: getattr(params, name)
        for name in params.model_fields_set
        if name in _PATCH_FIELDS
    }
    entry = await store.touch(key, **changes)
    assert entry is not None
    return {"ok": True, "path": str(store.index_path), "key": key, "entry": entry.dump()}


class SessionKeyParams(Params):
    key: str = Field(min_length=1)


@method("sessions.reset", params=SessionKeyParams, scope="admin")
async def sessions_reset(call: MethodCall, params: SessionKeyParams) -> dict[str, Any]:
    """A fresh transcript for the session (runs in it are aborted first)."""
    runtime = await agents_of(call)
    agent_id, key = runtime.session_key(params.key)
    await runtime.abort(key, reason="reset")
    entry: SessionEntry = await runtime.store(agent_id).reset(key)
    return {"ok": True, "key": key, "entry": entry.dump()}


class SessionsDeleteParams(Params):
    key: str = Field(min_length=1)
    deleteTranscript: bool = True


@method("sessions.delete", params=SessionsDeleteParams, scope="admin")
async def sessions_delete(call: MethodCall, params: SessionsDeleteParams) -> dict[str, Any]:
    """Remove a session; its transcript is archived (renamed), never erased."""
    runtime = await agents_of(call)
    agent_id, key = runtime.session_key(params.key)
    if key == main_key(agent_id):
        raise UsageError(f"cannot delete the main session ({key}); use sessions.reset")
    await runtime.abort(key, reason="deleted")
    deleted, archived = await runtime.store(agent_id).delete(
        key, delete_transcript=params.deleteTranscript
    )
    return {"ok": True, "key": key, "deleted": deleted, "archived": archived}


class SessionsResolveParams(Params):
    key: str | None = Field(default=None, min_length=1)
    sessionId: str | None = Field(default=None, min_length=1)
    label: str | None = Field(default=None, min_length=1, max_length=100)
    agentId: str | None = Field(default=None, min_length=1)
    spawnedBy: str | None = Field(default=None, min_length=1)
    includeGlobal: bool | None = None
    includeUnknown: bool | None = None


@method("sessions.resolve", params=SessionsResolveParams, scope="admin", advertise=False)
async def sessions_resolve(call: MethodCall, params: SessionsResolveParams) -> dict[str, Any]:
    """The canonical key of the one session named by ``key``, ``sessionId`` or ``label``
    (exactly one of them). Unknown or ambiguous: ``INVALID_REQUEST`` (as upstream, which
    handles it without advertising it)."""
    from moltbot.errors import NotFoundError

    given = [x for x in (params.key, params.sessionId, params.label) if x and x.strip()]
    if len(given) > 1:
        raise UsageError("Provide either key, sessionId, or label (not multiple)")
    if not given:
        raise UsageError("Either key, sessionId, or label is required")
    runtime = await agents_of(call)
    if params.key:
        agent_id, key = runtime.session_key(params.key, params.agentId)
        if await runtime.store(agent_id).get(key) is None:
            raise NotFoundError(f"No session found: {params.key}")
        return {"ok": True, "key": key}
    rows = await runtime.list_sessions(params.agentId)
    if params.spawnedBy:
        rows = [r for r in rows if r.get("spawnedBy") == params.spawnedBy]
    if params.sessionId:
        wanted = params.sessionId.strip()
        found = [r for r in rows if wanted in (r.get("sessionId"), r.get("key"))]
        missing, several = f"No session found: {wanted}", f"for sessionId: {wanted}"
    else:
        label = (params.label or "").strip()
        found = [r for r in rows if r.get("label") == label]
        missing = several = f"with label: {label}"
        missing = f"No session found {missing}"
    if not found:
        raise NotFoundError(missing)
    if len(found) > 1:
        keys = ", ".join(str(r["key"]) for r in found)
        raise UsageError(f"Multiple sessions found {several} ({keys})")
    return {"ok": True, "key": str(found[0]["key"])}


class SessionsCompactParams(Params):
    key: str = Field(min_length=1)
    maxLines: int | None = Field(default=None, ge=1)
    instructions: str | None = Field(default=None, max_length=2000)
    keepRecentTokens: int | None = Field(default=None, ge=0)


@method("sessions.compact", params=SessionsCompactParams, scope="admin")
async def sessions_compact(call: MethodCall, params: SessionsCompactParams) -> dict[str, Any]:
    """Summarise the session's older turns now (a ``compaction`` entry; the original
    lines stay). ``maxLines`` keeps about that many recent messages verbatim
    (upstream's parameter); ``keepRecentTokens`` sets it in tokens instead."""
    runtime = await agents_of(call)
    _, key = runtime.session_key(params.key)
    keep = params.keepRecentTokens
    if keep is None and params.maxLines is not None:
        keep = params.maxLines * 60  # about a short message each
    outcome = await runtime.compact(
        key, instructions=params.instructions, reason="manual", keep_recent=keep
    )
    payload: dict[str, Any] = {"ok": True, "key": key, "compacted": outcome.compacted}
    if outcome.reason:
        payload["reason"] = outcome.reason
    if outcome.tokens_before is not None:
        payload["tokensBefore"] = outcome.tokens_before
    if outcome.tokens_after is not None:
        payload["tokensAfter"] = outcome.tokens_after
    if outcome.entry_id:
        payload["entryId"] = outcome.entry_id
    return payload
