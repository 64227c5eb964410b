"""The cron scheduler driven by a manual clock: grids, DST, concurrency, back-off,
one-shots and the missed-run policy. No test sleeps: ``settle()`` is the barrier."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.automation.cron_helpers import ScriptedExecutor, job, ms

from moltbot.automation.clock import ManualClock
from moltbot.automation.jobs import CronJob, JobPatch
from moltbot.automation.scheduler import INTERRUPTED, CronScheduler, RunResult

NY = "America/New_York"


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.log: list[dict[str, Any]] = []
        self.changes = 0


@pytest.fixture
async def make() -> AsyncIterator[Any]:
    made: list[CronScheduler] = []

    async def build(start: int, jobs: list[CronJob] = (), **kwargs: Any) -> Any:  # type: ignore[assignment]
        clock = ManualClock(start)
        executor = ScriptedExecutor(clock)
        rec = Recorder()

        def changed(job_id: str | None) -> None:
            rec.changes += 1

        sched = CronScheduler(
            clock,
            executor,
            on_event=rec.events.append,
            on_finished=rec.log.append,
            on_change=changed,
            **kwargs,
        )
        sched.load(list(jobs))
        await sched.start()
        made.append(sched)
        return clock, executor, sched, rec

    yield build
    for sched in made:
        await sched.stop()


async def advance(clock: ManualClock, sched: CronScheduler, to: int) -> None:
    """Move the clock to ``to`` one due time at a time, letting every run finish."""
    while True:
        await sched.settle()
        nxt = sched.next_wake_ms()
        if nxt is None or nxt > to:
            break
        clock.set(max(nxt, clock.now_ms()))
    clock.set(to)
    await sched.settle()


async def test_every_job_runs_on_its_grid_and_records_each_run(make: Any) -> None:
    start = ms("2026-01-10 12:00")
    clock, ex, sched, rec = await make(start)
    added = sched.add(job({"kind": "every", "everyMs": 60_000}))
    assert added.state.nextRunAtMs == start + 60_000
    await advance(clock, sched, start + 3 * 60_000 + 30_000)
    assert [c.started_ms - start for c in ex.calls] == [60_000, 120_000, 180_000]
    assert [c.scheduled_ms for c in ex.calls] == [start + 60_000 * i for i in (1, 2, 3)]
    assert [e["status"] for e in rec.log] == ["ok", "ok", "ok"]
    assert rec.log[0]["runAtMs"] == start + 60_000 and rec.log[0]["nextRunAtMs"] == start + 120_000
    actions = [e["action"] for e in rec.events]
    assert actions == ["added"] + ["started", "finished"] * 3
    assert sched.get(added.id).state.lastStatus == "ok"


async def test_a_job_still_running_is_not_started_again(make: Any) -> None:
    start = ms("2026-01-10 12:00")
    clock, ex, sched, rec = await make(start, max_concurrent=4)  # slots are not the reason
    added = sched.add(job({"kind": "every", "everyMs": 1_000}))
    ex.hold()
    clock.set(start + 1_000)
    await ex.started.wait()
    sched.update(added.id, JobPatch.model_validate({"name": "renamed while running"}))
    for step in range(2, 6):  # due four more times while the first run is in flight
        clock.set(start + step * 1_000)
        await sched.settle(runs=False)
    assert len(ex.calls) == 1
    assert sched.running() == [added.id]
    assert (await sched.run(added.id, "force")) == {
        "ok": True,
        "ran": False,
        "reason": "already-running",
    }
    ex.release()
    await sched.settle()
    assert len(ex.calls) == 1  # the missed occurrences are not made up
    assert sched.get(added.id).state.nextRunAtMs == start + 6_000
    await advance(clock, sched, start + 6_000)
    assert len(ex.calls) == 2


async def test_max_concurrent_runs_queues_due_jobs_in_order(make: Any) -> None:
    start = ms("2026-01-10 12:00")
    clock, ex, sched, rec = await make(start, max_concurrent=2)
    ids = [
        sched.add(job({"kind": "at", "atMs": start + 1_000 + i}, name=f"j{i}")).id for i in range(3)
    ]
    ex.hold()
    clock.set(start + 5_000)
    await ex.started.wait()
    while len(ex.calls) < 2:
        await ex.started.wait()
        ex.started.clear()
    assert [c.job.id for c in ex.calls] == ids[:2]
    assert sorted(sched.running()) == sorted(ids[:2])
    ex.release()
    await sched.settle()
    assert [c.job.id for c in ex.calls] == ids


async def test_a_failing_job_backs_off_and_records_its_error(make: Any) -> None:
    start = ms("2026-01-10 12:00")
    clock, ex, sched, rec = await make(start)
    added = sched.add(job({"kind": "every", "everyMs": 1_000}))
    ex.results.extend([RunResult("error", error="boom"), RuntimeError("exploded")])
    clock.set(start + 1_000)
    await sched.settle()
    state = sched.get(added.id).state
    assert (state.lastStatus, state.lastError, state.consecutiveErrors) == ("error", "boom", 1)
    assert state.nextRunAtMs == start + 1_000 + 30_000  # not the next second: 30 s back-off
    await advance(clock, sched, start + 31_000)
    state = sched.get(added.id).state
    assert (state.lastError, state.consecutiveErrors) == ("exploded", 2)
    assert state.nextRunAtMs == start + 31_000 + 60_000
    await advance(clock, sched, start + 91_000)
    state = sched.get(added.id).state
    assert (state.lastStatus, state.consecutiveErrors) == ("ok", 0)
    assert state.nextRunAtMs == start + 92_000  # back on its grid
    assert [e["status"] for e in rec.log] == ["error", "error", "ok"]
    assert rec.log[1]["error"] == "exploded"
    assert "consecutiveErrors" not in sched.get(added.id).wire()["state"]


async def test_at_job_fires_once_then_is_disabled_or_deleted(make: Any) -> None:
    start = ms("2026-01-10 12:00")
    clock, ex, sched, rec = await make(start)
    keep = sched.add(job({"kind": "at", "atMs": start + 5_000}, name="keep"))
    drop = sched.add(job({"kind": "at", "atMs": start + 5_000}, name="drop", deleteAfterRun=True))
    await advance(clock, sched, start + 3_600_000)
    assert sorted(c.job.name for c in ex.calls) == ["drop", "keep"]
    assert drop.id not in sched.jobs
    kept = sched.get(keep.id)
    assert kept.enabled is False and kept.state.nextRunAtMs is None
    assert ("removed", drop.id) in [(e["action"], e["jobId"]) for e in rec.events]
    assert (await sched.run(keep.id)) == {"ok": True, "ran": False, "reason": "not-due"}


async def test_failed_at_job_stays_due_and_retries_after_backoff(make: Any) -> None:
    start = ms("2026-01-10 12:00")
    clock, ex, sched, rec = await make(start)
    once = sched.add(job({"kind": "at", "atMs": start + 1_000}))
    ex.results.append(RunResult("error", error="channel down"))
    await advance(clock, sched, start + 1_000)
    assert sched.get(once.id).state.nextRunAtMs == start + 31_000
    await advance(clock, sched, start + 40_000)
    assert len(ex.calls) == 2 and sched.get(once.id).enabled is False


async def test_cron_in_new_york_across_spring_forward(make: Any) -> None:
    start = ms("2026-03-06 12:00", NY)
    clock, ex, sched, rec = await make(start)
    sched.add(job({"kind": "cron", "expr": "30 2 * * *", "tz": NY}, name="daily"))
    sched.add(job({"kind": "cron", "expr": "0 * * * *", "tz": NY}, name="hourly"))
    await advance(clock, sched, ms("2026-03-09 03:00", NY))
    daily = [t for c, t in zip(ex.calls, ex.times(NY), strict=True) if c.job.name == "daily"]
    # 02:30 does not exist on March 8 (02:00 -> 03:00): it runs shifted by the gap, once
    assert daily == ["2026-03-07 02:30 EST", "2026-03-08 03:30 EDT", "2026-03-09 02:30 EDT"]
    hourly = [t for c, t in zip(ex.calls, ex.times(NY), strict=True) if c.job.name == "hourly"]
    around = [t for t in hourly if t.startswith("2026-03-08 0")][:4]
    assert around == [
        "2026-03-08 00:00 EST",
        "2026-03-08 01:00 EST",
        "2026-03-08 03:00 EDT",
        "2026-03-08 04:00 EDT",
    ]
    assert len(hourly) == len(set(c.started_ms for c in ex.calls if c.job.name == "hourly"))


async def test_cron_in_new_york_across_fall_back_runs_the_repeated_time_once(make: Any) -> None:
    start = ms("2026-10-31 12:00", NY)
    clock, ex, sched, rec = await make(start)
    sched.add(job({"kind": "cron", "expr": "30 1 * * *", "tz": NY}, name="daily"))
    await advance(clock, sched, ms("2026-11-02 12:00", NY))
    # 01:30 happens twice on November 1 (EDT, then EST): the job runs at the first
    assert ex.times(NY) == [
        "2026-11-01 01:30 EDT",
        "2026-11-02 01:30 EST",
    ]
    gap = ex.calls[1].started_ms - ex.calls[0].started_ms
    assert gap == 25 * 3_600_000  # the day was 25 hours long


async def test_missed_runs_within_the_grace_run_once_at_start(make: Any) -> None:
    created = ms("2026-01-10 06:00")
    down_until = ms("2026-01-10 07:20")
    recent = CronJob.model_validate(
        {
            "id": "recent",
            "name": "morning",
            "enabled": True,
            "createdAtMs": created,
            "updatedAtMs": created,
            "schedule": {"kind": "every", "everyMs": 600_000},  # due 06:10 ... 07:20
            "sessionTarget": "main",
            "wakeMode": "next-heartbeat",
            "payload": {"kind": "systemEvent", "text": "x"},
            "state": {"nextRunAtMs": ms("2026-01-10 06:30")},
        }
    )
    stale = recent.model_copy(
        deep=True,
        update={"id": "stale", "schedule": job({"kind": "cron", "expr": "0 7 * * *"}).schedule},
    )
    stale.state.nextRunAtMs = ms("2026-01-09 07:00")
    once = recent.model_copy(
        deep=True, update={"id": "once", "schedule": job({"kind": "at", "atMs": 1}).schedule}
    )
    once.state.nextRunAtMs = ms("2026-01-08 07:00")
    clock, ex, sched, rec = await make(down_until, [recent, stale, once], missed_grace_ms=3_600_000)
    await sched.settle()
    assert [c.job.id for c in ex.calls] == ["recent"]  # one run for eight missed occurrences
    assert ex.calls[0].scheduled_ms == ms("2026-01-10 06:30")
    skipped = {e["jobId"]: e for e in rec.log if e["status"] == "skipped"}
    assert set(skipped) == {"stale", "once"}
    assert skipped["stale"]["runAtMs"] == ms("2026-01-09 07:00")
    assert "missed" in skipped["stale"]["error"]
    assert sched.get("stale").state.nextRunAtMs == ms("2026-01-11 07:00")
    assert sched.get("once").enabled is False
    assert sched.get("recent").state.nextRunAtMs == ms("2026-01-10 07:30")


async def test_a_run_the_last_process_died_in_is_recorded_as_interrupted(make: Any) -> None:
    start = ms("2026-01-10 12:00")
    died = CronJob.model_validate(
        {
            "id": "died",
            "name": "long",
            "enabled": True,
            "createdAtMs": start - 600_000,
            "updatedAtMs": start - 600_000,
            "schedule": {"kind": "every", "everyMs": 3_600_000},
            "sessionTarget": "main",
            "wakeMode": "next-heartbeat",
            "payload": {"kind": "systemEvent", "text": "x"},
            "state": {"nextRunAtMs": start - 60_000, "runningAtMs": start - 60_000},
        }
    )
    clock, ex, sched, rec = await make(start, [died])
    await sched.settle()
    assert rec.log[0]["status"] == "error" and rec.log[0]["error"] == INTERRUPTED
    assert [c.job.id for c in ex.calls] == ["died"]  # then run again (within the grace)
    assert sched.get("died").state.runningAtMs is None


async def test_update_disable_and_remove(make: Any) -> None:
    start = ms("2026-01-10 12:00")
    clock, ex, sched, rec = await make(start)
    added = sched.add(job({"kind": "every", "everyMs": 1_000}))
    sched.update(added.id, JobPatch.model_validate({"enabled": False}))
    await advance(clock, sched, start + 10_000)
    assert ex.calls == []
    assert sched.list() == [] and len(sched.list(include_disabled=True)) == 1
    sched.update(
        added.id,
        JobPatch.model_validate({"enabled": True, "schedule": {"kind": "every", "everyMs": 5_000}}),
    )
    await advance(clock, sched, start + 15_000)
    assert len(ex.calls) == 1
    assert sched.remove(added.id) == {"ok": True, "removed": True}
    assert sched.remove(added.id) == {"ok": True, "removed": False}
    await advance(clock, sched, start + 60_000)
    assert len(ex.calls) == 1


async def test_disabled_scheduler_runs_nothing_until_enabled(make: Any) -> None:
    start = ms("2026-01-10 12:00")
    clock, ex, sched, rec = await make(start, enabled=False)
    sched.add(job({"kind": "at", "atMs": start + 1_000}))
    clock.set(start + 5_000)
    await sched.settle()
    assert ex.calls == []
    sched.set_enabled(True)
    await sched.settle()
    assert len(ex.calls) == 1


async def test_drain_starts_nothing_new_and_waits_for_runs_in_flight(make: Any) -> None:
    import asyncio

    start = ms("2026-01-10 12:00")
    clock, ex, sched, rec = await make(start)
    first = sched.add(job({"kind": "at", "atMs": start + 1_000}, name="first"))
    sched.add(job({"kind": "at", "atMs": start + 2_000}, name="second"))
    ex.hold()
    clock.set(start + 1_000)
    await ex.started.wait()
    draining = asyncio.create_task(sched.drain(60))
    clock.set(start + 5_000)  # "second" falls due while draining
    await asyncio.sleep(0)
    assert not draining.done()
    ex.release()
    await draining
    assert sched.get(first.id).state.lastStatus == "ok"
    assert [c.job.name for c in ex.calls] == ["first"]
