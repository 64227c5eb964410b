"""``memory_search`` and ``memory_get``: the agent's notes (``MEMORY.md``, ``memory/*.md``)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from moltbot.agents.tools.base import Tool, ToolContext, ToolError, ToolParams
from moltbot.agents.tools.confine import workspace_confinement
from moltbot.agents.tools.fs import read_bytes
from moltbot.config.schema import Config
from moltbot.subsystems import AGENTS
from moltbot.validation import Field

if TYPE_CHECKING:
    from moltbot.agents.memory import MemoryIndex


def _index(ctx: ToolContext) -> MemoryIndex:
    runtime = ctx.lookup(AGENTS)
    if runtime is None:
        raise ToolError("memory search is not available here")
    return runtime.memory_index(ctx.agent_id)


class MemorySearchParams(ToolParams):
    query: str = Field(min_length=1, description="What to look for (words, names, ids).")
    maxResults: int | None = Field(default=None, ge=1, le=50)


class MemorySearchTool(Tool):
    name = "memory_search"
    description = (
        "Search your memory notes (MEMORY.md and memory/*.md in the workspace): snippets "
        "with file and line range. Use it before answering about past work, decisions, "
        "people or preferences."
    )
    Params = MemorySearchParams

    def enabled(self, config: Config) -> bool:
        return config.agents.defaults.memory_search.enabled

    async def run(self, ctx: ToolContext, params: MemorySearchParams) -> dict[str, Any]:
        limit = params.maxResults or ctx.config.agents.defaults.memory_search.max_results
        hits = await _index(ctx).search(params.query, limit)
        return {"results": [hit.as_dict() for hit in hits]}


class MemoryGetParams(ToolParams):
    path: str = Field(description="MEMORY.md or memory/<file>.md (workspace-relative).")
    fromLine: int = Field(default=1, ge=1, alias="from")
    lines: int = Field(default=200, ge=1, le=2000)


class MemoryGetTool(Tool):
    name = "memory_get"
    description = "Read lines of one memory file (MEMORY.md or memory/*.md)."
    Params = MemoryGetParams

    def enabled(self, config: Config) -> bool:
        return config.agents.defaults.memory_search.enabled

    async def run(self, ctx: ToolContext, params: MemoryGetParams) -> dict[str, Any]:
        from moltbot.agents.memory import is_memory_path  # SQLite's module: at first use

        if not is_memory_path(params.path):
            raise ToolError(f"{params.path}: not a memory file (MEMORY.md or memory/*.md)")
        box = workspace_confinement(ctx)
        data = await asyncio.to_thread(read_bytes, box, box.resolve(params.path))
        lines = data.decode("utf-8", "replace").splitlines()
        start = params.fromLine - 1
        chosen = lines[start : start + params.lines]
        return {
            "path": params.path,
            "from": params.fromLine,
            "to": start + len(chosen),
            "totalLines": len(lines),
            "text": "\n".join(chosen),
        }
