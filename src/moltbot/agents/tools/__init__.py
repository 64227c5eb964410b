"""Agent tools: the interface (:mod:`.base`) and the lazy table of built-ins."""

from __future__ import annotations

from moltbot.agents.tools.base import Tool, ToolContext, ToolError, ToolParams, ToolResult

# name -> "module:Class". Imported when a runtime starts; a module that does not
# exist (yet) is skipped, so other areas can add their tools here independently.
TOOLS: dict[str, str] = {
    "read": "moltbot.agents.tools.fs:ReadTool",
    "write": "moltbot.agents.tools.fs:WriteTool",
    "edit": "moltbot.agents.tools.fs:EditTool",
    "exec": "moltbot.agents.tools.exec:ExecTool",
    "web_fetch": "moltbot.agents.tools.web:WebFetchTool",
    "browser": "moltbot.agents.tools.browser:BrowserTool",
    "canvas": "moltbot.agents.tools.canvas:CanvasTool",
    "sessions_list": "moltbot.agents.tools.sessions:SessionsListTool",
    "sessions_history": "moltbot.agents.tools.sessions:SessionsHistoryTool",
    "message": "moltbot.channels.tool:MessageTool",
    "nodes": "moltbot.agents.tools.nodes:NodesTool",
    "cron": "moltbot.automation.tool:CronTool",
    "skill": "moltbot.agents.tools.skill:SkillTool",
    "memory_search": "moltbot.agents.tools.memory:MemorySearchTool",
    "memory_get": "moltbot.agents.tools.memory:MemoryGetTool",
    "rescue": "moltbot.rescue.tools:RescueTool",
}

__all__ = ["TOOLS", "Tool", "ToolContext", "ToolError", "ToolParams", "ToolResult"]
