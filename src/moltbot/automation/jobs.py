"""Cron jobs: upstream's ``CronJob`` wire and store shape, and the rules that change them.

A job is either a **main** job (``sessionTarget: "main"``, payload
``{kind: "systemEvent", text}``: the text is queued as a system event for the
agent's main session) or an **isolated** one (``sessionTarget: "isolated"``,
payload ``{kind: "agentTurn", message, ...}``: an agent turn in its own session
``cron:<jobId>``, whose reply may be delivered to a chat). The two must agree.

Models reject unknown fields, as upstream's schemas do. ``state.consecutiveErrors``
is kept in the store only (it drives the back-off) and never sent on the wire.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

from moltbot.automation.schedule import (
    ScheduleError,
    check_cron,
    cron_next_ms,
    every_next_ms,
    format_duration,
    parse_at_ms,
    parse_duration_ms,
)
from moltbot.errors import NotFoundError, UsageError
from moltbot.validation import BaseModel, ConfigDict, Field

NonEmpty = Annotated[str, Field(min_length=1)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Text = Annotated[str, Field(min_length=1, max_length=100_000)]
Short = Annotated[str, Field(min_length=1, max_length=200)]
JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
"""Ids name run-log files: no path separators, no leading dot."""
AGENT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MIN_EVERY_MS = 1_000
"""The shortest interval: a job cannot run more than once a second."""
BACKOFF_MS = (30_000, 60_000, 5 * 60_000, 15 * 60_000, 60 * 60_000)
"""Wait after 1, 2, 3, 4, 5+ failed runs in a row before the next try."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AtSchedule(_Wire):
    kind: Literal["at"]
    atMs: int = Field(ge=0)


class EverySchedule(_Wire):
    kind: Literal["every"]
    everyMs: int = Field(ge=1)
    anchorMs: int | None = Field(default=None, ge=0)


class CronSchedule(_Wire):
    kind: Literal["cron"]
    expr: Short
    tz: str | None = Field(default=None, max_length=64)


Schedule = Annotated[AtSchedule | EverySchedule | CronSchedule, Field(discriminator="kind")]


class SystemEventPayload(_Wire):
    kind: Literal["systemEvent"]
    text: Text


class AgentTurnPayload(_Wire):
    kind: Literal["agentTurn"]
    message: Text
    model: str | None = Field(default=None, max_length=200)
    thinking: str | None = Field(default=None, max_length=32)
    timeoutSeconds: int | None = Field(default=None, ge=1)
    deliver: bool | None = None
    channel: Short | None = None
    """``"last"`` (the chat the agent last talked in) or a channel id (``telegram``)."""
    to: str | None = Field(default=None, max_length=200)
    bestEffortDeliver: bool | None = None


Payload = Annotated[SystemEventPayload | AgentTurnPayload, Field(discriminator="kind")]


class SystemEventPatch(_Wire):
    kind: Literal["systemEvent"]
    text: Text | None = None


class AgentTurnPatch(_Wire):
    kind: Literal["agentTurn"]
    message: Text | None = None
    model: str | None = Field(default=None, max_length=200)
    thinking: str | None = Field(default=None, max_length=32)
    timeoutSeconds: int | None = Field(default=None, ge=1)
    deliver: bool | None = None
    channel: Short | None = None
    to: str | None = Field(default=None, max_length=200)
    bestEffortDeliver: bool | None = None


PayloadPatch = Annotated[SystemEventPatch | AgentTurnPatch, Field(discriminator="kind")]


class Isolation(_Wire):
    postToMainPrefix: str | None = Field(default=None, max_length=200)
    postToMainMode: Literal["summary", "full"] | None = None
    postToMainMaxChars: int | None = Field(default=None, ge=0)


Status = Literal["ok", "error", "skipped"]


class JobState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nextRunAtMs: int | None = Field(default=None, ge=0)
    runningAtMs: int | None = Field(default=None, ge=0)
    lastRunAtMs: int | None = Field(default=None, ge=0)
    lastStatus: Status | None = None
    lastError: str | None = None
    lastDurationMs: int | None = Field(default=None, ge=0)
    consecutiveErrors: int = Field(default=0, ge=0)
    """Store only: failed runs in a row (the back-off)."""


class CronJob(_Wire):
    id: NonEmpty
    agentId: NonEmpty | None = None
    name: Name
    description: str | None = Field(default=None, max_length=2000)
    enabled: bool
    deleteAfterRun: bool | None = None
    createdAtMs: int = Field(ge=0)
    updatedAtMs: int = Field(ge=0)
    schedule: Schedule
    sessionTarget: Literal["main", "isolated"]
    wakeMode: Literal["next-heartbeat", "now"]
    payload: Payload
    isolation: Isolation | None = None
    state: JobState = Field(default_factory=JobState)

    def wire(self) -> dict[str, Any]:
        """The job as the protocol carries it (upstream's ``CronJob`` schema)."""
        data = self.model_dump(exclude_none=True)
        data["state"].pop("consecutiveErrors", None)
        return data

    def stored(self) -> dict[str, Any]:
        data = self.model_dump(exclude_none=True)
        if not data["state"].get("consecutiveErrors"):
            data["state"].pop("consecutiveErrors", None)
        return data


class JobInput(_Wire):
    """``cron.add`` params (after :func:`normalize_input`)."""

    name: Name
    agentId: Short | None = None
    description: str | None = Field(default=None, max_length=2000)
    enabled: bool | None = None
    deleteAfterRun: bool | None = None
    schedule: Schedule
    sessionTarget: Literal["main", "isolated"]
    wakeMode: Literal["next-heartbeat", "now"]
    payload: Payload
    isolation: Isolation | None = None


class StatePatch(_Wire):
    nextRunAtMs: int | None = Field(default=None, ge=0)
    runningAtMs: int | None = Field(default=None, ge=0)
    lastRunAtMs: int | None = Field(default=None, ge=0)
    lastStatus: Status | None = None
    lastError: str | None = None
    lastDurationMs: int | None = Field(default=None, ge=0)


class JobPatch(_Wire):
    """``cron.update``'s ``patch``: only the fields present change (``agentId: null`` clears)."""

    name: Name | None = None
    agentId: Short | None = None
    description: str | None = Field(default=None, max_length=2000)
    enabled: bool | None = None
    deleteAfterRun: bool | None = None
    schedule: Schedule | None = None
    sessionTarget: Literal["main", "isolated"] | None = None
    wakeMode: Literal["next-heartbeat", "now"] | None = None
    payload: PayloadPatch | None = None
    isolation: Isolation | None = None
    state: StatePatch | None = None


# ---- input normalization (upstream's lenient forms) ----------------------------------


def normalize_input(raw: Any, *, defaults: bool, now_ms: int) -> Any:
    """Accept upstream's lenient inputs before validation: a job wrapped in
    ``{job: ...}``/``{data: ...}``; ``schedule.at`` or ``atMs`` as an ISO string; a
    schedule without ``kind``; ``agentId: ""``; ``enabled: "true"``. With ``defaults``
    (adds): ``wakeMode`` defaults to ``next-heartbeat`` and ``sessionTarget`` follows
    the payload kind."""
    if not isinstance(raw, dict):
        return raw
    base = raw.get("data") if isinstance(raw.get("data"), dict) else raw
    base = base.get("job") if isinstance(base.get("job"), dict) else base
    out = dict(base)
    agent = out.get("agentId")
    if isinstance(agent, str):
        if agent.strip():
            out["agentId"] = agent.strip().lower()
        else:
            out.pop("agentId")
    enabled = out.get("enabled")
    if isinstance(enabled, str) and enabled.strip().lower() in ("true", "false"):
        out["enabled"] = enabled.strip().lower() == "true"
    schedule = out.get("schedule")
    if isinstance(schedule, dict):
        schedule = dict(schedule)
        if "kind" not in schedule:
            if "atMs" in schedule or "at" in schedule:
                schedule["kind"] = "at"
            elif "everyMs" in schedule:
                schedule["kind"] = "every"
            elif "expr" in schedule:
                schedule["kind"] = "cron"
        when = schedule.pop("at", None)
        if isinstance(schedule.get("atMs"), str):
            when = schedule.pop("atMs")
        if isinstance(when, str):
            parsed = parse_at_ms(when, now_ms)
            if parsed is not None:
                schedule["atMs"] = parsed
        out["schedule"] = schedule
    payload = out.get("payload")
    if isinstance(payload, dict) and "provider" in payload and "channel" not in payload:
        payload = dict(payload)
        payload["channel"] = payload.pop("provider")  # upstream's legacy key
        out["payload"] = payload
    if defaults:
        out.setdefault("wakeMode", "next-heartbeat")
        kind = payload.get("kind") if isinstance(payload, dict) else None
        if "sessionTarget" not in out and kind in ("systemEvent", "agentTurn"):
            out["sessionTarget"] = "main" if kind == "systemEvent" else "isolated"
    return out


# ---- rules ---------------------------------------------------------------------------


def check_job(job: CronJob | JobInput) -> None:
    """Raise :class:`UsageError` for a job that cannot run as specified."""
    if job.sessionTarget == "main" and job.payload.kind != "systemEvent":
        raise UsageError('main cron jobs need payload.kind "systemEvent" (--system-event)')
    if job.sessionTarget == "isolated" and job.payload.kind != "agentTurn":
        raise UsageError('isolated cron jobs need payload.kind "agentTurn" (--message)')
    if job.agentId is not None and not AGENT_ID.match(job.agentId):
        raise UsageError(f"invalid agentId {job.agentId!r}")
    if isinstance(job.schedule, CronSchedule):
        check_cron(job.schedule.expr, job.schedule.tz)
    if isinstance(job.schedule, EverySchedule) and job.schedule.everyMs < MIN_EVERY_MS:
        raise UsageError(f"everyMs must be at least {MIN_EVERY_MS} (1 s)")


def create_job(data: JobInput, now_ms: int, job_id: str | None = None) -> CronJob:
    check_job(data)
    name = data.name.strip()
    if not name:
        raise UsageError("cron job name is required")
    job = CronJob(
        id=job_id or str(uuid.uuid4()),
        agentId=data.agentId,
        name=name,
        description=(data.description or "").strip() or None,
        enabled=True if data.enabled is None else data.enabled,
        deleteAfterRun=data.deleteAfterRun,
        createdAtMs=now_ms,
        updatedAtMs=now_ms,
        schedule=data.schedule,
        sessionTarget=data.sessionTarget,
        wakeMode=data.wakeMode,
        payload=data.payload,
        isolation=data.isolation,
    )
    job.state.nextRunAtMs = next_run_ms(job, now_ms)
    return job


def apply_patch(job: CronJob, patch: JobPatch, now_ms: int) -> CronJob:
    """A new job: ``job`` with ``patch`` applied, checked, its next run recomputed."""
    data = job.model_dump()
    given = patch.model_fields_set
    for name in ("name", "description", "enabled", "deleteAfterRun", "sessionTarget"):
        if name in given and getattr(patch, name) is not None:
            data[name] = getattr(patch, name)
    if "description" in given:
        data["description"] = (patch.description or "").strip() or None
    if "name" in given and patch.name is not None:
        data["name"] = patch.name.strip() or job.name
    if "agentId" in given:
        data["agentId"] = patch.agentId.lower() if patch.agentId else None
    if patch.wakeMode is not None:
        data["wakeMode"] = patch.wakeMode
    if patch.schedule is not None:
        data["schedule"] = patch.schedule.model_dump()
    if patch.isolation is not None:
        data["isolation"] = patch.isolation.model_dump()
    if patch.payload is not None:
        data["payload"] = _merge_payload(job.payload, patch.payload)
    state_given: set[str] = set()
    if patch.state is not None:
        # the scheduler alone says whether a job is running
        state_given = patch.state.model_fields_set - {"runningAtMs"}
        data["state"].update(patch.state.model_dump(include=state_given))
    updated = CronJob.model_validate(data)
    check_job(updated)
    updated.updatedAtMs = now_ms
    if not updated.enabled:
        updated.state.nextRunAtMs = None
    elif "nextRunAtMs" not in state_given:
        updated.state.nextRunAtMs = next_run_ms(updated, now_ms)
    return updated


def _merge_payload(current: Any, patch: SystemEventPatch | AgentTurnPatch) -> dict[str, Any]:
    given = {k: v for k, v in patch.model_dump(exclude_unset=True).items() if v is not None}
    if patch.kind == current.kind:
        return {**current.model_dump(exclude_none=True), **given}
    needed = "text" if patch.kind == "systemEvent" else "message"
    if needed not in given:
        raise UsageError(f'cron.update: payload.kind "{patch.kind}" needs {needed}')
    return given


def next_run_ms(job: CronJob, now_ms: int) -> int | None:
    """When ``job`` runs next after ``now_ms`` (``None``: never)."""
    if not job.enabled:
        return None
    schedule = job.schedule
    if isinstance(schedule, AtSchedule):
        done = job.state.lastStatus == "ok" and job.state.lastRunAtMs is not None
        return None if done else schedule.atMs
    if isinstance(schedule, EverySchedule):
        anchor = schedule.anchorMs if schedule.anchorMs is not None else job.createdAtMs
        return every_next_ms(max(schedule.everyMs, MIN_EVERY_MS), anchor, now_ms)
    try:
        return cron_next_ms(schedule.expr, schedule.tz, now_ms)
    except ScheduleError:
        return None


def backoff_ms(consecutive_errors: int) -> int:
    if consecutive_errors <= 0:
        return 0
    return BACKOFF_MS[min(consecutive_errors, len(BACKOFF_MS)) - 1]


def describe_schedule(schedule: AtSchedule | EverySchedule | CronSchedule) -> str:
    from datetime import UTC, datetime

    if isinstance(schedule, AtSchedule):
        when = datetime.fromtimestamp(schedule.atMs / 1000, UTC)
        return f"at {when:%Y-%m-%d %H:%M}Z"
    if isinstance(schedule, EverySchedule):
        return f"every {format_duration(schedule.everyMs)}"
    return f"cron {schedule.expr}" + (f" @ {schedule.tz}" if schedule.tz else "")


def check_job_id(job_id: str) -> str:
    if not JOB_ID.match(job_id):
        raise NotFoundError(f"unknown cron job id: {job_id}")
    return job_id


def every_from_text(text: str) -> int:
    value = parse_duration_ms(text)
    if value is None:
        raise ScheduleError(f"invalid interval {text!r}", hint="use e.g. 30s, 10m, 1h, 1d")
    return value


__all__ = [
    "AgentTurnPayload",
    "AtSchedule",
    "CronJob",
    "CronSchedule",
    "EverySchedule",
    "JobInput",
    "JobPatch",
    "SystemEventPayload",
    "apply_patch",
    "backoff_ms",
    "check_job",
    "check_job_id",
    "create_job",
    "describe_schedule",
    "next_run_ms",
    "normalize_input",
]
