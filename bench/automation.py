"""Cron scheduler overhead with 10,000 jobs: memory, store load and write, and how late
jobs start (wake-up jitter) while the other jobs wait in the store.

The real ``cron`` subsystem (store, run logs, events) on a temporary state dir, with
the real clock; each run is a no-op (the executor returns at once), so the figures
are the scheduler's own cost, not an agent's.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from _harness import Result

TITLE = "Automation: cron scheduler with 10,000 jobs"
ORDER = 70
JOBS = 10_000
PROBES = 200
BURST = 1_000


def _input(index: int, schedule: dict[str, Any]) -> Any:
    from moltbot.automation.jobs import JobInput

    return JobInput.model_validate(
        {
            "name": f"job {index}",
            "schedule": schedule,
            "sessionTarget": "isolated",
            "wakeMode": "next-heartbeat",
            "payload": {
                "kind": "agentTurn",
                "message": f"Summarize the inbox and post it (job {index}).",
                "deliver": True,
                "channel": "telegram",
                "to": "123456789",
            },
        }
    )


def _service(state: Path) -> Any:
    from moltbot.automation.service import CronService
    from moltbot.config.schema import Config
    from moltbot.instance.resolve import Invocation, resolve_identity, resolve_instance
    from moltbot.lifecycle import SubsystemContext

    env = {"HOME": str(state), "MOLTBOT_STATE_DIR": str(state / "state"), "PATH": "/bin"}
    config = Config.model_validate({"cron": {"maxConcurrentRuns": 4}})
    instance = resolve_instance(resolve_identity(Invocation(), env, state), config, env)
    context = SubsystemContext(
        instance=instance,
        config=config,
        env=env,
        token=None,
        password=None,
        broadcast=lambda *a, **k: None,
        logger=logging.getLogger("bench.cron"),
    )
    return CronService(context)


def _traced_bytes(inputs: list[Any]) -> int:
    """Python memory held by a scheduler with ``inputs`` added (jobs, heap, index)."""
    from moltbot.automation.clock import SystemClock
    from moltbot.automation.scheduler import CronScheduler, RunResult

    async def never(_request: Any) -> RunResult:
        return RunResult("ok")

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    scheduler = CronScheduler(SystemClock(), never)
    for data in inputs:
        scheduler.add(data)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del scheduler
    return held


def _rss_mib() -> float:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 2**20


async def _measure(state: Path) -> list[Result]:
    from moltbot.automation.scheduler import RunRequest, RunResult

    rows: list[Result] = []
    lags: list[int] = []

    async def no_op(request: RunRequest) -> RunResult:
        if request.scheduled_ms is not None:
            lags.append(request.started_ms - request.scheduled_ms)
        return RunResult("ok", summary="done")

    cron = {"kind": "cron", "expr": "*/5 * * * *", "tz": "Europe/Berlin"}
    inputs = [
        _input(i, cron if i % 2 else {"kind": "every", "everyMs": 3_600_000}) for i in range(JOBS)
    ]
    service = _service(state)
    service.scheduler.executor = no_op
    await service.start()
    gc.collect()
    rss_before = _rss_mib()
    started = time.perf_counter()
    for data in inputs:
        service.scheduler.add(data)
    add_ms = (time.perf_counter() - started) * 1000
    await service.flush()
    gc.collect()
    rss = _rss_mib() - rss_before
    traced = _traced_bytes(inputs)
    rows += [
        Result(
            name=f"add {JOBS:,} jobs",
            value=round(add_ms),
            unit="ms",
            note=f"{add_ms * 1000 / JOBS:.0f} µs per job (validation, next run, heap)",
        ),
        Result(
            name=f"memory of {JOBS:,} jobs (traced)",
            value=round(traced / 2**20, 1),
            unit="MiB",
            note=f"{traced / JOBS / 1024:.1f} KiB per job (Python objects)",
        ),
        Result(
            name=f"memory of {JOBS:,} jobs (RSS growth)",
            value=round(rss, 1),
            unit="MiB",
            note="process resident set, after the first store write",
        ),
    ]

    started = time.perf_counter()
    service._save_soon(None)  # every job dumped again: the worst write
    await service.flush()
    full_ms = (time.perf_counter() - started) * 1000
    one = next(iter(service.scheduler.jobs))
    started = time.perf_counter()
    service._save_soon(one)  # one job changed: what a run costs
    blocked_start = time.perf_counter()
    service._dump()
    blocked_ms = (time.perf_counter() - blocked_start) * 1000
    service._save_soon(one)
    await service.flush()
    write_ms = (time.perf_counter() - started) * 1000
    size = service.store.path.stat().st_size / 2**20
    rows += [
        Result(
            name="store write, all jobs re-dumped",
            value=round(full_ms),
            unit="ms",
            note=f"jobs.json {size:.1f} MiB + .bak, fsync'd",
        ),
        Result(
            name="store write after one run",
            value=round(write_ms),
            unit="ms",
            note=f"of which {blocked_ms:.1f} ms on the event loop (the rest in a thread)",
        ),
    ]

    # wake-up jitter: probes due at spread times while 10,000 jobs wait
    now = service.clock.now_ms()
    base = now + 1_000
    for index in range(PROBES):
        service.scheduler.add(_input(JOBS + index, {"kind": "at", "atMs": base + index * 25}))
    while len(lags) < PROBES:
        await asyncio.sleep(0.05)
    await service.flush()
    ordered = sorted(lags)
    rows += [
        Result(
            name="wake-up lag p50",
            value=statistics.median(ordered),
            unit="ms",
            note=f"{PROBES} one-shot jobs, one every 25 ms, among {JOBS:,} waiting",
        ),
        Result(
            name="wake-up lag p99",
            value=ordered[int(len(ordered) * 0.99) - 1],
            unit="ms",
            note="start time minus due time (store and run log written meanwhile)",
        ),
        Result(name="wake-up lag max", value=ordered[-1], unit="ms", note=""),
    ]

    # a burst: many jobs due at the same instant
    lags.clear()
    due = service.clock.now_ms() + 1_000
    for index in range(BURST):
        service.scheduler.add(_input(2 * JOBS + index, {"kind": "at", "atMs": due}))
    await service.flush()
    while len(lags) < BURST:
        await asyncio.sleep(0.05)
    rows.append(
        Result(
            name=f"burst: {BURST:,} jobs due at once, last started after",
            value=max(lags),
            unit="ms",
            note=f"{BURST * 1000 / max(1, max(lags)):.0f} runs/s with maxConcurrentRuns 4",
        )
    )
    await service.stop()

    restarted = _service(state)
    started = time.perf_counter()
    await restarted.start()
    load_ms = (time.perf_counter() - started) * 1000
    rows.append(
        Result(
            name=f"gateway start: load {len(restarted.scheduler.jobs):,} jobs",
            value=round(load_ms),
            unit="ms",
            note="read, validate, next runs, heap",
        )
    )
    await restarted.stop()
    return rows


def run() -> list[Result]:
    state = Path(tempfile.mkdtemp(prefix="moltbot-bench-cron-"))
    try:
        return asyncio.run(_measure(state))
    finally:
        shutil.rmtree(state, ignore_errors=True)
