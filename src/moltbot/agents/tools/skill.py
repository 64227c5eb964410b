"""``skill``: read the instructions of one of the agent's eligible skills."""

from __future__ import annotations

import asyncio
from typing import Any

from moltbot.agents import skills
from moltbot.agents.tools.base import Tool, ToolContext, ToolError, ToolParams
from moltbot.validation import Field


class SkillParams(ToolParams):
    name: str = Field(description="The skill's name, as listed under available_skills.")


class SkillTool(Tool):
    name = "skill"
    description = (
        "Load a skill's instructions (its SKILL.md) by name, when one of the available "
        "skills applies to the task."
    )
    Params = SkillParams

    async def run(self, ctx: ToolContext, params: SkillParams) -> dict[str, Any]:
        found = await asyncio.to_thread(
            skills.statuses, ctx.config, ctx.env, ctx.workspace, ctx.instance.skills_dir
        )
        wanted = params.name.strip().lower()
        for item in found:
            if item.skill.name == wanted or item.skill.key == wanted:
                if not item.eligible:
                    raise ToolError(
                        f"skill {wanted} is not available here: {'; '.join(item.reasons())}"
                    )
                return {
                    "name": item.skill.name,
                    "baseDir": str(item.skill.base_dir),
                    "instructions": item.skill.instructions(),
                }
        names = ", ".join(i.skill.name for i in found if i.eligible) or "none"
        raise ToolError(f"no skill {wanted!r}; available: {names}")
