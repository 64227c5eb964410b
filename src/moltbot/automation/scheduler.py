"""The cron scheduler: which job runs when, one at a time per job, and what is recorded.

It owns the jobs in memory and one timer task. It does not know what a run
*does*: an executor (``await executor(RunRequest) -> RunResult``) runs a job,
and callbacks persist the jobs, append run logs and broadcast ``cron`` events.
Time comes from an injectable :class:`~moltbot.automation.clock.Clock`.

Rules:

- a job never runs twice at once: a job still running when it is due again is
  not started again (that occurrence is skipped, the next one is computed when
  the run ends);
- at most ``max_concurrent`` jobs run at once; due jobs wait for a free slot in
  the order they fell due. ``run(id, "force")`` runs at once regardless;
- a run that fails (the executor returns ``error`` or raises) records its error
  and waits before the next try: 30 s, 1 min, 5 min, 15 min, then 60 min after
  1, 2, 3, 4, 5+ failures in a row (``backoff_ms``); a success resets it;
- a one-shot ``at`` job stays due until it succeeds; then it is disabled, or
  removed with ``deleteAfterRun``;
- **missed runs** (:meth:`CronScheduler.load`, when the gateway starts): a job
  that fell due while the gateway was down runs once at start if it fell due at
  most ``missed_grace_ms`` ago (several missed occurrences count as one);
  otherwise that run is skipped and recorded (``status: "skipped"``) and the job
  moves on to its next occurrence (a one-shot job is disabled). A run the
  previous process died in is recorded as an error (``interrupted``) and counts
  as missed.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from moltbot.automation.clock import Clock
from moltbot.automation.jobs import (
    AtSchedule,
    CronJob,
    JobInput,
    JobPatch,
    Status,
    apply_patch,
    backoff_ms,
    create_job,
    next_run_ms,
)
from moltbot.errors import NotFoundError

log = logging.getLogger("moltbot.cron")

INTERRUPTED = "interrupted: the gateway stopped during this run"


@dataclass(frozen=True)
class RunRequest:
    job: CronJob
    """A copy of the job as it was when the run started."""
    scheduled_ms: int | None
    """When it was due (``None`` for a forced run)."""
    started_ms: int
    forced: bool


@dataclass(frozen=True)
class RunResult:
    status: Status
    error: str | None = None
    summary: str | None = None
    output: str | None = None


Executor = Callable[[RunRequest], Awaitable[RunResult]]
Callback = Callable[[dict[str, Any]], None]


def _ignore(_payload: dict[str, Any]) -> None:
    return None


class CronScheduler:
    def __init__(
        self,
        clock: Clock,
        executor: Executor,
        *,
        max_concurrent: int = 1,
        missed_grace_ms: int = 3_600_000,
        enabled: bool = True,
        on_event: Callback = _ignore,
        on_finished: Callback = _ignore,
        on_change: Callable[[str | None], None] = lambda job_id: None,
    ) -> None:
        self.clock = clock
        self.executor = executor
        self.max_concurrent = max(1, max_concurrent)
        self.missed_grace_ms = missed_grace_ms
        self.enabled = enabled
        self.on_event = on_event
        self.on_finished = on_finished
        self.on_change = on_change
        self.jobs: dict[str, CronJob] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._heap: list[tuple[int, int, str]] = []
        self._latest: dict[str, int] = {}
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._version = 0
        self._seen: tuple[int, int] | None = None
        """(version, now) the timer last went to sleep with (see :meth:`settle`)."""
        self._settled = asyncio.Condition()

    # ---- lifecycle ---------------------------------------------------------------

    def load(self, jobs: list[CronJob]) -> list[dict[str, Any]]:
        """Take ``jobs`` from the store, applying the missed-run policy (module
        docstring); the run-log entries it produced (also passed to ``on_finished``)."""
        now = self.clock.now_ms()
        entries: list[dict[str, Any]] = []
        for job in jobs:
            self.jobs[job.id] = job
            state = job.state
            if state.runningAtMs is not None:
                entries.append(_entry(job.id, "error", state.runningAtMs, now, error=INTERRUPTED))
                state.lastStatus, state.lastError = "error", INTERRUPTED
                state.lastRunAtMs, state.runningAtMs = state.runningAtMs, None
            if not job.enabled:
                state.nextRunAtMs = None
                continue
            due = state.nextRunAtMs
            if due is None:
                state.nextRunAtMs = next_run_ms(job, now)
            elif due <= now and now - due > self.missed_grace_ms:
                why = (
                    f"missed: due {_iso(due)} while the gateway was not running "
                    f"(more than {self.missed_grace_ms // 1000} s before it started)"
                )
                entries.append(_entry(job.id, "skipped", due, now, error=why))
                state.lastStatus, state.lastError = "skipped", why
                if isinstance(job.schedule, AtSchedule):
                    job.enabled, state.nextRunAtMs = False, None
                else:
                    state.nextRunAtMs = next_run_ms(job, now)
            elif due > now and not state.consecutiveErrors:
                state.nextRunAtMs = next_run_ms(job, now)  # picks up hand edits
            self._push(job)
        for entry in entries:
            self.on_finished(entry)
        if entries:
            self.on_change(None)
        return entries

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="cron scheduler")

    async def stop(self) -> None:
        """Stop the timer and cancel runs in flight (they stay marked running in the
        store, and are recorded as interrupted at the next start)."""
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        self._task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._running.clear()

    async def drain(self, grace_s: float) -> None:
        """Start no more runs (until :meth:`set_enabled`); wait up to ``grace_s`` seconds
        for the runs in flight (before a restart)."""
        self.enabled = False
        self._wake.set()
        running = list(self._running.values())
        if running:
            await asyncio.wait(running, timeout=grace_s)

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        self._version += 1
        self._wake.set()

    # ---- reading -----------------------------------------------------------------

    def get(self, job_id: str) -> CronJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise NotFoundError(f"unknown cron job id: {job_id}", hint="moltbot cron list --all")
        return job

    def list(self, include_disabled: bool = False) -> list[CronJob]:
        jobs = [j for j in self.jobs.values() if include_disabled or j.enabled]
        return sorted(jobs, key=lambda j: j.state.nextRunAtMs or 0)

    def next_wake_ms(self) -> int | None:
        times = [
            j.state.nextRunAtMs
            for j in self.jobs.values()
            if j.enabled and j.state.nextRunAtMs is not None
        ]
        return min(times) if times else None

    def running(self) -> list[str]:
        return list(self._running)

    # ---- changing ----------------------------------------------------------------

    def add(self, data: JobInput) -> CronJob:
        job = create_job(data, self.clock.now_ms())
        self.jobs[job.id] = job
        self._push(job)
        self.on_event({"jobId": job.id, "action": "added", **_next(job)})
        self._changed(job.id)
        return job

    def update(self, job_id: str, patch: JobPatch) -> CronJob:
        current = self.get(job_id)
        job = apply_patch(current, patch, self.clock.now_ms())
        job.state.runningAtMs = current.state.runningAtMs
        self.jobs[job_id] = job
        self._push(job)
        self.on_event({"jobId": job_id, "action": "updated", **_next(job)})
        self._changed(job_id)
        return job

    def remove(self, job_id: str) -> dict[str, Any]:
        removed = self.jobs.pop(job_id, None) is not None
        self._latest.pop(job_id, None)
        if removed:
            self.on_event({"jobId": job_id, "action": "removed"})
            self._changed(job_id)
        return {"ok": True, "removed": removed}

    async def run(self, job_id: str, mode: Literal["due", "force"] = "due") -> dict[str, Any]:
        """Run a job now and wait for it: ``{ok, ran}`` (``reason`` when it did not:
        ``not-due``, ``already-running``). ``force`` runs it even when not due or
        disabled, and regardless of ``max_concurrent``."""
        job = self.get(job_id)
        if job_id in self._running:
            return {"ok": True, "ran": False, "reason": "already-running"}
        forced = mode == "force"
        now = self.clock.now_ms()
        due = job.enabled and job.state.nextRunAtMs is not None and now >= job.state.nextRunAtMs
        if not (forced or due):
            return {"ok": True, "ran": False, "reason": "not-due"}
        task = self._launch(job, None if forced else job.state.nextRunAtMs, forced, now)
        await asyncio.shield(task)
        return {"ok": True, "ran": True}

    # ---- the timer ---------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            version = self._version
            now = self.clock.now_ms()
            try:
                self._start_due(now)
            except Exception:  # a broken job must not stop every other job
                log.exception("cron: starting due jobs failed")
            deadline = self._deadline()
            async with self._settled:
                self._seen = (version, now)
                self._settled.notify_all()
            await self.clock.sleep_until(deadline, self._wake)
            self._seen = None

    def _start_due(self, now: int) -> None:
        while self.enabled and self._heap and self._heap[0][0] <= now:
            if len(self._running) >= self.max_concurrent:
                return
            at, seq, job_id = heapq.heappop(self._heap)
            job = self.jobs.get(job_id)
            if job is None or self._latest.get(job_id) != seq or job_id in self._running:
                continue
            if not job.enabled or job.state.nextRunAtMs != at:
                continue
            self._launch(job, at, False, now)

    def _deadline(self) -> int | None:
        if not self.enabled or len(self._running) >= self.max_concurrent:
            return None
        while self._heap:
            at, seq, job_id = self._heap[0]
            if self._latest.get(job_id) == seq and job_id in self.jobs:
                return at
            heapq.heappop(self._heap)
        return None

    def _push(self, job: CronJob) -> None:
        if job.enabled and job.state.nextRunAtMs is not None:
            seq = next(self._seq)
            self._latest[job.id] = seq
            heapq.heappush(self._heap, (job.state.nextRunAtMs, seq, job.id))
        else:
            self._latest.pop(job.id, None)

    def _changed(self, job_id: str) -> None:
        """Job ``job_id`` changed (or went): wake the timer, tell ``on_change``."""
        self._version += 1
        self._wake.set()
        self.on_change(job_id)

    # ---- one run -----------------------------------------------------------------

    def _launch(
        self, job: CronJob, scheduled: int | None, forced: bool, now: int
    ) -> asyncio.Task[None]:
        job.state.runningAtMs = now
        request = RunRequest(job.model_copy(deep=True), scheduled, now, forced)
        self.on_event({"jobId": job.id, "action": "started", "runAtMs": now})
        task = asyncio.create_task(self._execute(request), name=f"cron job {job.id}")
        self._running[job.id] = task
        self._changed(job.id)
        return task

    async def _execute(self, request: RunRequest) -> None:
        try:
            result = await self.executor(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("cron job %s failed", request.job.id)
            result = RunResult("error", error=str(exc) or type(exc).__name__)
        self._finish(request, result)

    def _finish(self, request: RunRequest, result: RunResult) -> None:
        job_id = request.job.id
        self._running.pop(job_id, None)
        ended = max(self.clock.now_ms(), request.started_ms)
        duration = ended - request.started_ms
        entry = _entry(
            job_id,
            result.status,
            request.started_ms,
            ended,
            error=result.error,
            summary=result.summary,
        )
        job = self.jobs.get(job_id)
        deleted = False
        if job is not None:
            state = job.state
            state.runningAtMs = None
            state.lastRunAtMs, state.lastStatus = request.started_ms, result.status
            state.lastDurationMs, state.lastError = duration, result.error
            failed = result.status == "error"
            state.consecutiveErrors = state.consecutiveErrors + 1 if failed else 0
            one_shot_done = isinstance(job.schedule, AtSchedule) and result.status == "ok"
            if one_shot_done and job.deleteAfterRun:
                deleted = True
            elif one_shot_done:
                job.enabled, state.nextRunAtMs = False, None
            elif job.enabled:
                following = next_run_ms(job, ended)
                if failed and following is not None:
                    following = max(following, ended + backoff_ms(state.consecutiveErrors))
                state.nextRunAtMs = following
            if state.nextRunAtMs is not None:
                entry["nextRunAtMs"] = state.nextRunAtMs
        if result.status == "error":
            log.warning(
                "cron job %s (%s) failed: %s; next try %s",
                request.job.name,
                job_id,
                result.error,
                _iso(entry["nextRunAtMs"]) if "nextRunAtMs" in entry else "never",
            )
        event = {k: v for k, v in entry.items() if k not in ("ts", "jobId", "action")}
        self.on_event({"jobId": job_id, "action": "finished", **event})
        if deleted:
            self.jobs.pop(job_id, None)
            self._latest.pop(job_id, None)
            self.on_event({"jobId": job_id, "action": "removed"})
        elif job is not None:
            self._push(job)
        self.on_finished(entry)
        self._changed(job_id)

    # ---- tests and benchmarks ------------------------------------------------------

    async def settle(self, runs: bool = True) -> None:
        """Return once the timer has seen every change and the clock's current time,
        and (with ``runs``) no run is in flight: a barrier for tests driving a
        ManualClock."""
        async with self._settled:
            await self._settled.wait_for(
                lambda: (
                    not (runs and self._running)
                    and self._seen == (self._version, self.clock.now_ms())
                )
            )


def _entry(
    job_id: str,
    status: Status,
    run_at: int,
    ended: int,
    *,
    error: str | None = None,
    summary: str | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "ts": ended,
        "jobId": job_id,
        "action": "finished",
        "status": status,
        "runAtMs": run_at,
        "durationMs": max(0, ended - run_at),
    }
    if error:
        entry["error"] = error
    if summary:
        entry["summary"] = summary
    return entry


def _next(job: CronJob) -> dict[str, Any]:
    return {"nextRunAtMs": job.state.nextRunAtMs} if job.state.nextRunAtMs is not None else {}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


__all__ = ["INTERRUPTED", "CronScheduler", "Executor", "RunRequest", "RunResult"]
