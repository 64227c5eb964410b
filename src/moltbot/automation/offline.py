"""The ``cron.*`` operations on the store itself, for ``moltbot cron`` while no gateway
runs (a running gateway owns the store: commands go through it then).

Each operation reads, changes and writes the store under its lock; results have
the same shapes as the methods'. Nothing runs here: a job added offline runs
once the gateway starts (the missed-run policy applies to what fell due while
it was down).
"""

from __future__ import annotations

import time
from typing import Any

from moltbot.automation.jobs import (
    CronJob,
    JobInput,
    JobPatch,
    apply_patch,
    check_job_id,
    create_job,
    normalize_input,
)
from moltbot.automation.runlog import RunLog
from moltbot.automation.store import CronStore
from moltbot.errors import NotFoundError


def _now() -> int:
    return time.time_ns() // 1_000_000


def status(store: CronStore, enabled: bool) -> dict[str, Any]:
    jobs = store.load().jobs
    times = [j.state.nextRunAtMs for j in jobs if j.enabled and j.state.nextRunAtMs is not None]
    return {
        "enabled": enabled,
        "storePath": str(store.path),
        "jobs": len(jobs),
        "nextWakeAtMs": min(times) if times and enabled else None,
    }


def list_jobs(store: CronStore, include_disabled: bool) -> dict[str, Any]:
    jobs = [j for j in store.load().jobs if include_disabled or j.enabled]
    jobs.sort(key=lambda j: j.state.nextRunAtMs or 0)
    return {"jobs": [j.wire() for j in jobs]}


def add(store: CronStore, params: dict[str, Any]) -> dict[str, Any]:
    data = JobInput.model_validate(normalize_input(params, defaults=True, now_ms=_now()))
    with store.edit() as (loaded, save):
        job = create_job(data, _now())
        save([*loaded.jobs, job])
    return job.wire()


def update(store: CronStore, job_id: str, patch: dict[str, Any]) -> dict[str, Any]:
    parsed = JobPatch.model_validate(normalize_input(patch, defaults=False, now_ms=_now()))
    with store.edit() as (loaded, save):
        current = _find(loaded.jobs, job_id)
        job = apply_patch(current, parsed, _now())
        save([job if j.id == job_id else j for j in loaded.jobs])
    return job.wire()


def remove(store: CronStore, job_id: str) -> dict[str, Any]:
    with store.edit() as (loaded, save):
        kept = [j for j in loaded.jobs if j.id != job_id]
        removed = len(kept) != len(loaded.jobs)
        if removed:
            save(kept)
    return {"ok": True, "removed": removed}


def runs(store: CronStore, job_id: str, limit: int) -> dict[str, Any]:
    return {"entries": RunLog(store.runs_dir).read(check_job_id(job_id), limit)}


def _find(jobs: list[CronJob], job_id: str) -> CronJob:
    for job in jobs:
        if job.id == job_id:
            return job
    raise NotFoundError(f"unknown cron job id: {job_id}", hint="moltbot cron list --all")


__all__ = ["add", "list_jobs", "remove", "runs", "status", "update"]
