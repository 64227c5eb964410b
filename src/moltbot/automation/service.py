"""The ``cron`` subsystem: the job store, the scheduler, and what a run does.

- A **main** job queues its text as a system event of the agent's main session;
  with ``wakeMode: "now"`` it runs a heartbeat at once and the run's status is
  the heartbeat's (while the main session is busy, the heartbeat follows as soon
  as it is idle and the run is ``ok``); with ``next-heartbeat`` the text waits
  for the next heartbeat or message.
- An **isolated** job runs an agent turn in ``cron:<jobId>``
  (:mod:`.isolated`), then posts ``<prefix>: <summary>`` to the main session
  (``isolation.postToMainPrefix``, default ``Cron``; ``postToMainMode: "full"``
  posts the reply, cut at ``postToMainMaxChars``, default 8000); ``wakeMode:
  "now"`` then asks for a heartbeat.

Every change is written to the store before the method that made it answers;
changes made by runs are written in the background (coalesced). Run-log lines
are appended in order by one writer. ``cron.enabled: false`` (or
``CLAWDBOT_SKIP_CRON=1``) keeps the store and the methods working but runs
nothing on schedule.

It also runs the turns of ``POST <hooks.path>/agent`` (:meth:`CronService.start_hook`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from moltbot.automation.clock import Clock, SystemClock
from moltbot.automation.isolated import Turn, cron_message, hook_message, run_turn
from moltbot.automation.jobs import CronJob, JobInput, JobPatch
from moltbot.automation.runlog import RunLog
from moltbot.automation.scheduler import CronScheduler, RunRequest, RunResult
from moltbot.automation.store import CronStore
from moltbot.errors import MoltbotError, RetryLaterError
from moltbot.lifecycle import State, SubsystemContext
from moltbot.sessions.keys import main_key

RUN_GRACE_S = 60.0
AGENTS_WAIT_S = 15.0
FULL_POST_CHARS = 8_000


def store_path(config: Any, instance: Any) -> Path:
    """``cron.store`` (``~`` expanded, relative to the state dir), else
    ``<state>/cron/jobs.json``."""
    configured = (config.cron.store or "").strip()
    if not configured:
        return Path(instance.cron_dir) / "jobs.json"
    path = Path(configured).expanduser()
    return path if path.is_absolute() else Path(instance.state_dir) / path


class CronService:
    """See the module docstring. ``name = "cron"`` in the gateway."""

    name = "cron"

    def __init__(self, context: SubsystemContext, clock: Clock | None = None) -> None:
        from moltbot.instance import env as envvars

        self.ctx = context
        self.log = context.logger
        self.config = context.config
        self.state = State.CREATED
        self.clock: Clock = clock or SystemClock()
        self.skip = envvars.flag(context.env, "SKIP_CRON") is not None
        self.store = CronStore(store_path(context.config, context.instance))
        self.runlog = RunLog(self.store.runs_dir)
        settings = context.config.cron
        self.scheduler = CronScheduler(
            self.clock,
            self._execute,
            max_concurrent=settings.max_concurrent_runs,
            missed_grace_ms=settings.missed_run_grace_seconds * 1000,
            enabled=settings.enabled and not self.skip,
            on_event=self._event,
            on_finished=self._log_run,
            on_change=self._save_soon,
        )
        self._invalid: list[Any] = []
        self._dirty = False
        self._dumped: dict[str, dict[str, Any]] = {}
        self._changed_ids: set[str] = set()
        self._save_error: Exception | None = None
        self._saver: asyncio.Task[None] | None = None
        self._log_queue: deque[dict[str, Any]] = deque()
        self._logger_task: asyncio.Task[None] | None = None
        self._hooks: set[asyncio.Task[Any]] = set()

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self.state = State.STARTING
        loaded = await asyncio.to_thread(self.store.load)
        for warning in loaded.warnings:
            self.log.warning("%s", warning)
        self._invalid = loaded.invalid
        for entry in self.scheduler.load(loaded.jobs):
            self.log.warning("cron job %s: %s", entry["jobId"], entry.get("error"))
        await self.scheduler.start()
        self.state = State.RUNNING
        self.log.info(
            "%d job(s) in %s%s",
            len(self.scheduler.jobs),
            self.store.path,
            "" if self.scheduler.enabled else " (not running jobs: cron disabled)",
        )

    async def stop(self) -> None:
        self.state = State.STOPPING
        for task in list(self._hooks):
            task.cancel()
        await asyncio.gather(*self._hooks, return_exceptions=True)
        await self.scheduler.stop()
        with contextlib.suppress(Exception):
            await self.flush()
        if self._logger_task is not None:
            with contextlib.suppress(Exception):
                await self._logger_task
        self.state = State.STOPPED

    async def drain(self, grace: float) -> None:
        """Before a restart: start no more jobs, let the runs and hook turns in flight
        finish for up to ``grace`` seconds (what is left is cancelled by :meth:`stop`
        and recorded as interrupted at the next start)."""
        hooks = list(self._hooks)
        await asyncio.gather(
            self.scheduler.drain(grace),
            asyncio.wait(hooks, timeout=grace) if hooks else asyncio.sleep(0),
        )

    async def reconfigure(self, config: Any) -> bool:
        if store_path(config, self.ctx.instance) != self.store.path:
            return False
        self.config = config
        settings = config.cron
        self.scheduler.max_concurrent = settings.max_concurrent_runs
        self.scheduler.missed_grace_ms = settings.missed_run_grace_seconds * 1000
        self.scheduler.set_enabled(settings.enabled and not self.skip)
        return True

    def status(self) -> dict[str, Any]:
        return {"state": str(self.state), **self.cron_status(), "running": self.scheduler.running()}

    def cron_status(self) -> dict[str, Any]:
        """The ``cron.status`` payload."""
        enabled = self.scheduler.enabled
        return {
            "enabled": enabled,
            "storePath": str(self.store.path),
            "jobs": len(self.scheduler.jobs),
            "nextWakeAtMs": self.scheduler.next_wake_ms() if enabled else None,
        }

    # ---- the methods' operations (each is on disk when it returns) -----------------

    async def add(self, data: JobInput) -> CronJob:
        job = self.scheduler.add(data)
        await self.flush()
        return job

    async def update(self, job_id: str, patch: JobPatch) -> CronJob:
        job = self.scheduler.update(job_id, patch)
        await self.flush()
        return job

    async def remove(self, job_id: str) -> dict[str, Any]:
        result = self.scheduler.remove(job_id)
        await self.flush()
        return result

    async def run(self, job_id: str, mode: Any) -> dict[str, Any]:
        result = await self.scheduler.run(job_id, mode)
        await self.flush()
        return result

    async def runs(self, job_id: str, limit: int) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.runlog.read, job_id, limit)

    # ---- persistence -----------------------------------------------------------------

    def _save_soon(self, job_id: str | None) -> None:
        """Job ``job_id`` changed (``None``: any may have): write the store soon."""
        if job_id is None:
            self._dumped.clear()
        else:
            self._changed_ids.add(job_id)
        self._dirty = True
        if self._saver is None or self._saver.done():
            self._saver = asyncio.create_task(self._save_pending(), name="cron store writer")

    def _dump(self) -> list[dict[str, Any]]:
        """Every job as stored; only the ones changed since the last write are dumped
        again (with 10,000 jobs a full dump would hold the event loop for ~100 ms)."""
        jobs = self.scheduler.jobs
        changed, self._changed_ids = self._changed_ids, set()
        for job_id in changed:
            self._dumped.pop(job_id, None)
        for job_id in list(self._dumped):
            if job_id not in jobs:
                del self._dumped[job_id]
        for job_id, job in jobs.items():
            if job_id not in self._dumped:
                self._dumped[job_id] = job.stored()
        return [self._dumped[job_id] for job_id in jobs]

    async def _save_pending(self) -> None:
        while self._dirty:
            self._dirty = False
            jobs = self._dump()
            try:
                await asyncio.to_thread(self.store.save, jobs, self._invalid)
            except Exception as exc:  # kept dirty: the next change tries again
                self._dirty, self._save_error = True, exc
                self.log.error("cannot write %s: %s", self.store.path, exc)
                return
            self._save_error = None

    async def flush(self) -> None:
        """Wait until every change so far is in the store (raises if it cannot be written)."""
        if self._dirty and (self._saver is None or self._saver.done()):
            self._saver = asyncio.create_task(self._save_pending(), name="cron store writer")
        if self._saver is not None:
            await asyncio.shield(self._saver)
        if self._save_error is not None:
            raise MoltbotError(
                f"cannot write the cron store {self.store.path}: {self._save_error}",
                hint="check the disk and the permissions of the state dir",
            )

    def _log_run(self, entry: dict[str, Any]) -> None:
        self._log_queue.append(entry)
        if self._logger_task is None or self._logger_task.done():
            self._logger_task = asyncio.create_task(self._write_logs(), name="cron run log")

    async def _write_logs(self) -> None:
        while self._log_queue:
            entry = self._log_queue.popleft()
            try:
                await asyncio.to_thread(self.runlog.append, entry)
            except Exception as exc:
                self.log.error("cannot write the run log of %s: %s", entry["jobId"], exc)

    def _event(self, payload: dict[str, Any]) -> None:
        self.ctx.broadcast("cron", payload, drop_if_slow=True)

    # ---- runs ------------------------------------------------------------------------

    async def _agents(self) -> Any:
        agents = self.ctx.lookup("agents")
        if agents is None:
            raise RetryLaterError("the agent runtime is not running")
        return agents

    async def _execute(self, request: RunRequest) -> RunResult:
        job = request.job
        agents = await self._agents()
        timeout = (
            job.payload.timeoutSeconds
            if job.payload.kind == "agentTurn" and job.payload.timeoutSeconds
            else agents.config.agents.defaults.timeout_seconds
        )
        limit = timeout + RUN_GRACE_S
        try:
            if job.payload.kind == "systemEvent":
                return await asyncio.wait_for(self._run_main(agents, job), limit)
            return await asyncio.wait_for(self._run_isolated(agents, job, request), limit)
        except TimeoutError:
            return RunResult("error", error=f"the run did not finish within {int(limit)} s")

    async def _run_main(self, agents: Any, job: CronJob) -> RunResult:
        assert job.payload.kind == "systemEvent"
        text = job.payload.text.strip()
        agent_id = agents.resolve_agent(job.agentId)
        agents.system_events.enqueue(main_key(agent_id), text)
        heartbeat = self.ctx.lookup("heartbeat")
        if job.wakeMode != "now" or heartbeat is None:
            return RunResult("ok", summary=text)
        outcome = await heartbeat.run_or_defer(agent_id, f"cron:{job.id}")
        if outcome.status == "ran":
            return RunResult("ok", summary=text)
        if outcome.status == "skipped":
            return RunResult("skipped", error=outcome.reason, summary=text)
        return RunResult("error", error=outcome.reason, summary=text)

    async def _run_isolated(self, agents: Any, job: CronJob, request: RunRequest) -> RunResult:
        payload = job.payload
        assert payload.kind == "agentTurn"
        turn = Turn(
            agent_id=job.agentId,
            session=f"cron:{job.id}",
            message=cron_message(job.id, job.name, payload.message, request.started_ms),
            timeout_s=payload.timeoutSeconds,
            model=payload.model,
            thinking=payload.thinking,
            deliver=payload.deliver,
            channel=payload.channel,
            to=payload.to,
            best_effort=bool(payload.bestEffortDeliver),
        )
        result = await run_turn(agents, self.ctx.lookup("channels"), turn)
        isolation = job.isolation
        prefix = ((isolation.postToMainPrefix if isolation else None) or "").strip() or "Cron"
        body = (result.summary or result.error or result.status).strip()
        if isolation is not None and isolation.postToMainMode == "full" and result.output:
            cap = isolation.postToMainMaxChars
            cap = FULL_POST_CHARS if cap is None else cap
            body = result.output[:cap] + ("…" if len(result.output) > cap else "")
        label = prefix if result.status == "ok" else f"{prefix} ({result.status})"
        self._post_main(agents, job.agentId, f"{label}: {body}", job.wakeMode, f"cron:{job.id}")
        return result

    def _post_main(
        self, agents: Any, agent_id: str | None, text: str, wake_mode: str, reason: str
    ) -> None:
        agents.system_events.enqueue(main_key(agents.resolve_agent(agent_id)), text)
        heartbeat = self.ctx.lookup("heartbeat")
        if wake_mode == "now" and heartbeat is not None:
            heartbeat.request(f"{reason}:post")

    # ---- hooks -----------------------------------------------------------------------

    async def start_hook(self, request: Any) -> str:
        """Start the agent turn of ``POST <hooks>/agent`` in the background; its run id.

        Raises :class:`RetryLaterError` when the agent runtime is not running."""
        agents = await self._agents()
        run_id = str(uuid.uuid4())
        session = request.sessionKey or f"hook:{uuid.uuid4()}"
        turn = Turn(
            agent_id=None,
            session=session,
            message=hook_message(request.name, request.message, self.clock.now_ms()),
            channel_label="hook",
            timeout_s=request.timeoutSeconds,
            model=request.model,
            thinking=request.thinking,
            deliver=request.deliver,
            channel=request.channel,
            to=request.to,
            best_effort=False,
            run_id=run_id,
        )

        async def go() -> None:
            try:
                result = await run_turn(agents, self.ctx.lookup("channels"), turn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log.exception("hook %s failed", request.name)
                result = RunResult("error", error=str(exc) or type(exc).__name__)
            body = (result.summary or result.error or result.status).strip()
            label = f"Hook {request.name}" + (
                "" if result.status == "ok" else f" ({result.status})"
            )
            self._post_main(agents, None, f"{label}: {body}", request.wakeMode, "hook")

        task = asyncio.create_task(go(), name=f"hook {request.name}")
        self._hooks.add(task)
        task.add_done_callback(self._hooks.discard)
        return run_id


__all__ = ["CronService", "store_path"]
