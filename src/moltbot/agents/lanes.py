"""Session lanes: the runs of one session execute one at a time, in submission order.

A session with work has a lane: its queue of runs and one worker task that
executes the head of the queue, waits for it and moves on; the lane disappears
once its queue is empty. The lanes also keep every run by id for
``agent.wait`` and retries: all unfinished runs, and the newest
:data:`FINISHED_RUNS_KEPT` finished ones.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from moltbot.agents.events import RunEvents
from moltbot.agents.run import Run, RunState, now_ms
from moltbot.errors import UsageError

FINISHED_RUNS_KEPT = 1000
SHUTDOWN_WAIT_S = 5


@dataclass(eq=False)
class Lane:
    key: str
    queue: deque[Run] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None


class SessionLanes:
    def __init__(
        self, execute: Callable[[Run], Coroutine[Any, Any, None]], events: RunEvents
    ) -> None:
        self._execute = execute
        self._events = events
        self._lanes: dict[str, Lane] = {}
        self._runs: OrderedDict[str, Run] = OrderedDict()

    def add(self, run: Run) -> Lane:
        """Queue ``run`` behind its session's runs. It starts once ``run.ready`` is True
        and the lane has a worker (:meth:`wake`); ``run.ready`` False drops it."""
        lane = self._lanes.setdefault(run.session_key, Lane(run.session_key))
        lane.queue.append(run)
        self._remember(run)
        return lane

    def withdraw(self, lane: Lane, run: Run) -> None:
        """Forget a run that :meth:`add` queued but that could not be recorded."""
        with contextlib.suppress(ValueError):
            lane.queue.remove(run)
        self._runs.pop(run.id, None)

    def wake(self, lane: Lane) -> None:
        """Start the lane's worker unless it is running."""
        if lane.worker is None or lane.worker.done():
            lane.worker = asyncio.create_task(self._drain(lane), name=f"lane {lane.key}")

    def get(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    def active(self, session_key: str) -> Run | None:
        """The session's running run, else the next one to run (a run that has just
        finished but is not yet taken off its queue is neither)."""
        lane = self._lanes.get(session_key)
        if lane is None:
            return None
        return next((run for run in lane.queue if not run.state.finished), None)

    def count(self, state: RunState) -> int:
        return sum(1 for run in self._runs.values() if run.state == state)

    def session_counts(self, session_key: str) -> tuple[int, int]:
        """``(running, queued)`` runs of one session."""
        lane = self._lanes.get(session_key)
        if lane is None:
            return 0, 0
        running = sum(1 for r in lane.queue if r.state == RunState.RUNNING)
        queued = sum(1 for r in lane.queue if r.state == RunState.QUEUED)
        return running, queued

    def running_run(self, session_key: str) -> Run | None:
        """The session's run that is executing now, if any."""
        lane = self._lanes.get(session_key)
        if lane is None:
            return None
        return next((r for r in lane.queue if r.state == RunState.RUNNING), None)

    def unfinished(self) -> list[Run]:
        """Every run queued or running, in no particular order."""
        return [
            run for lane in self._lanes.values() for run in lane.queue if not run.state.finished
        ]

    def keys(self) -> list[str]:
        """The sessions that have work."""
        return list(self._lanes)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no run is queued or running, at most ``timeout`` seconds;
        True when that happened."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.unfinished():
            left = deadline - loop.time()
            if left <= 0:
                return False
            workers = {
                lane.worker
                for lane in self._lanes.values()
                if lane.worker is not None and not lane.worker.done()
            }
            if workers:
                await asyncio.wait(workers, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            else:  # a submit is between recording its message and waking its lane
                await asyncio.sleep(min(left, 0.01))
        return True

    async def abort(
        self, session_key: str, run_id: str | None = None, *, reason: str = "aborted"
    ) -> list[str]:
        """Abort the session's runs (all, or one); returns the aborted run ids.

        The running run's task is cancelled and awaited (at most
        :data:`SHUTDOWN_WAIT_S`); queued ones never start. Raises
        :class:`UsageError` when ``run_id`` is not a run of this session.
        """
        lane = self._lanes.get(session_key)
        if run_id is not None:
            run = self._runs.get(run_id)
            if run is None or run.session_key != session_key:
                raise UsageError(f"run {run_id} does not belong to session {session_key}")
        if lane is None:
            return []
        aborted: list[str] = []
        for run in list(lane.queue):
            if run_id is not None and run.id != run_id:
                continue
            if run.state.finished:
                continue
            run.abort_reason = reason
            aborted.append(run.id)
            if run.task is not None and not run.task.done():
                run.task.cancel()
            elif run.state == RunState.QUEUED:
                lane.queue.remove(run)
                self._drop(run)
        running = [r.task for r in lane.queue if r.id in aborted and r.task and not r.task.done()]
        if running:
            await asyncio.wait(running, timeout=SHUTDOWN_WAIT_S)
        return aborted

    async def close(self, reason: str) -> list[Run]:
        """Abort every run and wait (at most :data:`SHUTDOWN_WAIT_S`) for the workers;
        returns the runs dropped before they started."""
        queued = [run for run in self.unfinished() if run.state == RunState.QUEUED]
        await asyncio.gather(*(self.abort(key, reason=reason) for key in list(self._lanes)))
        workers = [lane.worker for lane in self._lanes.values() if lane.worker]
        if workers:
            await asyncio.wait(workers, timeout=SHUTDOWN_WAIT_S)
        return [run for run in queued if run.started_at is None]

    def _drop(self, run: Run) -> None:
        run.state = RunState.ABORTED
        run.ended_at = now_ms()
        run.stop_reason = "aborted"
        self._events.aborted_in_queue(run)
        run.settle()

    def _remember(self, run: Run) -> None:
        self._runs[run.id] = run
        while len(self._runs) > FINISHED_RUNS_KEPT:
            oldest = next(iter(self._runs.values()))
            if not oldest.state.finished:
                break
            self._runs.popitem(last=False)

    async def _drain(self, lane: Lane) -> None:
        while lane.queue:
            run = lane.queue[0]
            assert run.ready is not None
            if not await run.ready or run.state.finished:
                if lane.queue and lane.queue[0] is run:
                    lane.queue.popleft()
                continue
            run.task = asyncio.create_task(self._execute(run), name=f"run {run.id}")
            await asyncio.wait({run.task})
            if lane.queue and lane.queue[0] is run:
                lane.queue.popleft()
        if self._lanes.get(lane.key) is lane and not lane.queue:
            del self._lanes[lane.key]
