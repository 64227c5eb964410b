"""The ``cron`` subsystem in-process with a manual clock and the real agent runtime: every
change reaches jobs.json (only changed jobs are dumped again), runs reach the run log,
main jobs queue system events, and a restart keeps everything."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.automation.cron_helpers import job, ms, subsystem_stack
from tests.channels.channel_helpers import wait_for

from moltbot.agents.runtime import embedded
from moltbot.automation.clock import ManualClock
from moltbot.automation.jobs import JobPatch
from moltbot.automation.service import CronService


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Any]:
    started: list[Any] = []

    async def build(clock: ManualClock, **cron: Any) -> tuple[CronService, Any, list[Any]]:
        data = {"agents": {"defaults": {"workspace": str(tmp_path / "ws")}}, "cron": cron}
        make_context, events = subsystem_stack(tmp_path, data)
        base = make_context(None)
        agents = embedded(base.instance, base.config, base.env)
        await agents.start()
        context = make_context({"agents": agents}.get)
        service = CronService(context, clock)
        await service.start()
        started.extend([service, agents])
        return service, agents, events

    yield build
    for item in started:
        await item.stop()


def stored(service: CronService) -> dict[str, Any]:
    return {j["id"]: j for j in json.loads(service.store.path.read_text())["jobs"]}


async def test_changes_and_runs_reach_the_store_and_survive_a_restart(make: Any) -> None:
    start = ms("2026-01-10 12:00")
    clock = ManualClock(start)
    service, agents, events = await make(clock)
    one = await service.add(job({"kind": "every", "everyMs": 60_000}, name="one"))
    two = await service.add(job({"kind": "every", "everyMs": 3_600_000}, name="two"))
    assert set(stored(service)) == {one.id, two.id}

    clock.set(start + 60_000)
    await service.scheduler.settle()
    await service.flush()
    on_disk = stored(service)
    assert on_disk[one.id]["state"]["lastStatus"] == "ok"
    assert on_disk[one.id]["state"]["nextRunAtMs"] == start + 120_000
    assert "lastStatus" not in on_disk[two.id]["state"]
    assert agents.system_events.peek("agent:main:main") == ["one fired"]

    await service.update(two.id, JobPatch.model_validate({"name": "second"}))
    assert stored(service)[two.id]["name"] == "second"
    await service.remove(one.id)
    assert set(stored(service)) == {two.id}
    await wait_for(lambda: service.runlog.path(one.id).exists())
    assert [e["status"] for e in (await service.runs(one.id, 10))] == ["ok"]
    assert [p["action"] for e, p in events if e == "cron"] == [
        "added",
        "added",
        "started",
        "finished",
        "updated",
        "removed",
    ]
    await service.stop()

    again, _, _ = await make(ManualClock(start + 90_000))
    assert [j.name for j in again.scheduler.list()] == ["second"]
    assert again.cron_status()["jobs"] == 1


async def test_disabled_cron_keeps_jobs_but_runs_nothing(make: Any) -> None:
    start = ms("2026-01-10 12:00")
    clock = ManualClock(start)
    service, agents, _ = await make(clock, enabled=False)
    added = await service.add(job({"kind": "at", "atMs": start + 1_000}))
    clock.set(start + 10_000)
    await service.scheduler.settle()
    assert service.cron_status() == {
        "enabled": False,
        "storePath": str(service.store.path),
        "jobs": 1,
        "nextWakeAtMs": None,
    }
    assert service.scheduler.get(added.id).state.lastRunAtMs is None
    assert agents.system_events.peek("agent:main:main") == []
