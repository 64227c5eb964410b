"""The agents' ``cron`` tool: the agent schedules, lists and changes its own jobs.

Actions as upstream's tool: ``status``, ``list``, ``add`` (``job``: a
``cron.add`` object), ``update`` (``jobId`` + ``patch``), ``remove``, ``run``,
``runs``, and ``wake`` (``text``, ``mode``). A job the agent adds belongs to
that agent unless ``job.agentId`` names another. Inputs are normalized and
validated exactly as the ``cron.*`` methods do.
"""

from __future__ import annotations

from typing import Any, Literal

from moltbot.agents.tools.base import Tool, ToolContext, ToolError, ToolParams
from moltbot.errors import MoltbotError
from moltbot.validation import Field, ValidationError


class CronParams(ToolParams):
    action: Literal["status", "list", "add", "update", "remove", "run", "runs", "wake"] = Field(
        description="What to do."
    )
    job: dict[str, Any] | None = Field(
        default=None,
        description='add: {name, schedule: {kind: "at", atMs} | {kind: "every", everyMs} | '
        '{kind: "cron", expr, tz?}, sessionTarget: "main" | "isolated", payload: '
        '{kind: "systemEvent", text} (main) | {kind: "agentTurn", message, deliver?, '
        "channel?, to?} (isolated), wakeMode?}",
    )
    jobId: str | None = Field(default=None, description="update, remove, run, runs: the job.")
    patch: dict[str, Any] | None = Field(default=None, description="update: fields to change.")
    includeDisabled: bool = Field(default=False, description="list: include disabled jobs.")
    mode: str | None = Field(
        default=None, description='run: "due" or "force"; wake: "now" or "next-heartbeat".'
    )
    text: str | None = Field(default=None, description="wake: the note for the main session.")
    limit: int = Field(default=20, ge=1, le=500, description="runs: newest entries.")


class CronTool(Tool):
    name = "cron"
    description = (
        "Schedule work: reminders and recurring tasks (cron jobs), list or change them, "
        "see their runs, or queue a note for the main session (wake)."
    )
    Params = CronParams

    def enabled(self, config: Any) -> bool:
        return bool(getattr(getattr(config, "cron", None), "enabled", True))

    async def run(self, ctx: ToolContext, params: CronParams) -> dict[str, Any]:
        try:
            return await self._run(ctx, params)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ToolError(f"invalid {params.action} input at {where}: {first['msg']}") from None
        except MoltbotError as exc:
            if isinstance(exc, ToolError):
                raise
            raise ToolError(exc.message) from None

    async def _run(self, ctx: ToolContext, params: CronParams) -> dict[str, Any]:
        from moltbot.automation.jobs import JobInput, JobPatch, normalize_input

        service = ctx.lookup("cron")
        if service is None:
            raise ToolError("cron is not running in this gateway")
        action = params.action
        if action == "wake":
            from moltbot.automation.wake import wake

            if not (params.text or "").strip():
                raise ToolError("wake needs text")
            mode = "now" if params.mode == "now" else "next-heartbeat"
            wake(ctx.lookup("agents"), ctx.lookup("heartbeat"), params.text or "", mode)
            return {"ok": True, "mode": mode}
        if action == "status":
            return service.cron_status()  # type: ignore[no-any-return]
        if action == "list":
            return {"jobs": [j.wire() for j in service.scheduler.list(params.includeDisabled)]}
        if action == "add":
            if not params.job:
                raise ToolError("add needs job")
            raw = normalize_input(params.job, defaults=True, now_ms=service.clock.now_ms())
            if isinstance(raw, dict):
                raw.setdefault("agentId", ctx.agent_id)
            job = await service.add(JobInput.model_validate(raw))
            return job.wire()  # type: ignore[no-any-return]
        if not params.jobId:
            raise ToolError(f"{action} needs jobId")
        if action == "update":
            raw = normalize_input(params.patch or {}, defaults=False, now_ms=service.clock.now_ms())
            job = await service.update(params.jobId, JobPatch.model_validate(raw))
            return job.wire()  # type: ignore[no-any-return]
        if action == "remove":
            return await service.remove(params.jobId)  # type: ignore[no-any-return]
        if action == "run":
            mode = "force" if params.mode == "force" else "due"
            return await service.run(params.jobId, mode)  # type: ignore[no-any-return]
        return {"entries": await service.runs(params.jobId, params.limit)}


__all__ = ["CronTool"]
