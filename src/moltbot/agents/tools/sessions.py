"""``sessions_list`` and ``sessions_history``: the agent looks at its own sessions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moltbot.agents.context import text_of
from moltbot.agents.tools.base import Tool, ToolContext, ToolError, ToolParams
from moltbot.sessions.keys import agent_of, normalize_key
from moltbot.subsystems import AGENTS
from moltbot.validation import Field

if TYPE_CHECKING:
    from moltbot.agents.runtime import AgentRuntime


def _runtime(ctx: ToolContext) -> AgentRuntime:
    runtime = ctx.lookup(AGENTS)
    if runtime is None:
        raise ToolError("the session store is not available here")
    return runtime


class SessionsListParams(ToolParams):
    limit: int = Field(default=20, ge=1, le=200, description="At most this many sessions.")
    activeMinutes: int | None = Field(
        default=None, ge=1, description="Only sessions active in the last N minutes."
    )


class SessionsListTool(Tool):
    name = "sessions_list"
    description = "List this agent's chat sessions (key, title, last activity, tokens)."
    Params = SessionsListParams

    async def run(self, ctx: ToolContext, params: SessionsListParams) -> dict[str, Any]:
        rows = await _runtime(ctx).list_sessions(
            ctx.agent_id,
            limit=params.limit,
            active_minutes=params.activeMinutes,
            titles=True,
            last_message=True,
        )
        keep = (
            "key",
            "label",
            "displayName",
            "derivedTitle",
            "lastMessagePreview",
            "channel",
            "updatedAt",
            "totalTokens",
        )
        return {"sessions": [{k: r[k] for k in keep if r.get(k) is not None} for r in rows]}


class SessionsHistoryParams(ToolParams):
    sessionKey: str = Field(description="The session key, e.g. agent:main:main.")
    limit: int = Field(default=20, ge=1, le=200, description="Last N messages.")
    includeTools: bool = Field(default=False, description="Include tool calls and results.")


class SessionsHistoryTool(Tool):
    name = "sessions_history"
    description = "Read the recent messages of one of this agent's sessions."
    Params = SessionsHistoryParams

    async def run(self, ctx: ToolContext, params: SessionsHistoryParams) -> dict[str, Any]:
        try:
            key = normalize_key(params.sessionKey, ctx.agent_id)
        except Exception as exc:
            raise ToolError(str(exc)) from None
        if agent_of(key) != ctx.agent_id:
            raise ToolError(
                f"{key} belongs to another agent; only {ctx.agent_id}'s sessions are readable"
            )
        history = await _runtime(ctx).history(key, limit=params.limit * 3)
        out = []
        for message in history["messages"]:
            role = message.get("role")
            if role == "toolResult" and not params.includeTools:
                continue
            item: dict[str, Any] = {"role": role, "text": text_of(message.get("content"))}
            if params.includeTools and role == "assistant":
                calls = [
                    b.get("name")
                    for b in message.get("content") or []
                    if isinstance(b, dict) and b.get("type") == "toolCall"
                ]
                if calls:
                    item["toolCalls"] = calls
            if item["text"] or item.get("toolCalls") or role == "toolResult":
                out.append(item)
        return {"sessionKey": key, "messages": out[-params.limit :]}
