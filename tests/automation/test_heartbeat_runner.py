"""The heartbeat runner in-process, with the real agent runtime, the stand-in model and a
manual clock: interval runs, a busy main session (skipped, not queued), active hours,
switching heartbeats off, and the cron service's main jobs deferring to a busy session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.automation.cron_helpers import ms, subsystem_stack
from tests.channels.channel_helpers import wait_for
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Reply

from moltbot.agents.runtime import embedded
from moltbot.automation.clock import ManualClock
from moltbot.automation.heartbeat import HeartbeatRunner, Outcome

HOUR = 3_600_000


@pytest.fixture
async def stack(tmp_path: Path, llm: FakeOpenAI) -> AsyncIterator[Any]:
    made: list[Any] = []

    async def build(heartbeat: dict[str, Any], start_ms: int) -> tuple[Any, HeartbeatRunner, Any]:
        data = openai_config(llm.base_url)
        data["agents"]["defaults"].update(workspace=str(tmp_path / "ws"), heartbeat=heartbeat)
        (tmp_path / "ws").mkdir(exist_ok=True)
        (tmp_path / "ws" / "HEARTBEAT.md").write_text("- check the build\n")
        make_context, events = subsystem_stack(tmp_path, data)
        base = make_context(None)
        agents = embedded(base.instance, base.config, base.env)
        await agents.start()
        subsystems = {"agents": agents}
        context = make_context(subsystems.get)
        clock = ManualClock(start_ms)
        runner = HeartbeatRunner(context, clock)
        await runner.start()
        made.extend([runner, agents])
        return agents, runner, (clock, events)

    yield build
    for item in made:
        await item.stop()


def beats(events: list[tuple[str, Any]]) -> list[str]:
    return [payload["status"] for event, payload in events if event == "heartbeat"]


async def test_interval_runs_and_a_busy_main_session_is_skipped_not_queued(
    stack: Any, llm: FakeOpenAI
) -> None:
    start = ms("2026-01-10 12:00")
    agents, runner, (clock, events) = await stack({"every": "1h"}, start)
    assert runner.beats["main"].next_due_ms == start + HOUR

    llm.push(Reply(hang=True))  # the user's turn hangs until aborted
    run = await agents.submit("main", None, "a long question")
    while not llm.requests:
        await asyncio.sleep(0.01)
    outcome = await runner.run_once("main", "interval")
    assert outcome == Outcome("skipped", "requests-in-flight")
    assert len(llm.requests) == 1  # no model call, nothing queued behind the turn
    await agents.abort(run.session_key, run.id)
    assert run.done is not None
    await run.done

    llm.push(Reply("HEARTBEAT_OK"))
    clock.set(start + HOUR)
    await wait_for(lambda: beats(events))
    assert beats(events) == ["ok-token"] and len(llm.requests) == 2
    await wait_for(lambda: runner.beats["main"].next_due_ms == start + 2 * HOUR)
    assert "Read HEARTBEAT.md" in str(llm.requests[1]["body"]["messages"][-1])


async def test_switched_off_heartbeats_wait_a_period_instead_of_spinning(
    stack: Any, llm: FakeOpenAI
) -> None:
    start = ms("2026-01-10 12:00")
    agents, runner, (clock, events) = await stack({"every": "30m"}, start)
    runner.set_enabled(False)
    clock.set(start + 31 * 60_000)
    await wait_for(lambda: runner.beats["main"].next_due_ms == start + 61 * 60_000)
    assert llm.requests == [] and runner.last_event is None
    assert await runner.run_once("main", "wake") == Outcome("skipped", "disabled")


async def test_active_hours_in_the_agents_zone(stack: Any, llm: FakeOpenAI) -> None:
    night = ms("2026-01-10 23:30", "Asia/Tokyo")
    hours = {"start": "08:00", "end": "22:00", "timezone": "Asia/Tokyo"}
    agents, runner, (clock, events) = await stack({"every": "1h", "activeHours": hours}, night)
    assert await runner.run_once("main", "wake") == Outcome("skipped", "quiet-hours")
    clock.set(ms("2026-01-11 09:00", "Asia/Tokyo"))
    llm.push(Reply("HEARTBEAT_OK"))
    assert await runner.run_once("main", "wake") == Outcome("ran")
    assert len(llm.requests) == 1


async def test_a_main_job_defers_its_heartbeat_while_the_session_is_busy(
    stack: Any, llm: FakeOpenAI
) -> None:
    start = ms("2026-01-10 12:00")
    agents, runner, (clock, events) = await stack({"every": "1h"}, start)
    llm.push(Reply(hang=True))
    run = await agents.submit("main", None, "busy")
    while not llm.requests:
        await asyncio.sleep(0.01)
    # the asking turn may be the busy one: never wait for it
    assert await runner.run_or_defer("main", "cron:x") == Outcome("ran", "deferred")
    llm.push(Reply("Water the plants."))
    await agents.abort(run.session_key, run.id)
    assert run.done is not None
    await run.done
    clock.advance(2_000)  # the requested heartbeat retries once the session is idle
    await wait_for(lambda: beats(events))
    assert beats(events) == ["skipped"] and len(llm.requests) == 2
    assert runner.last_event is not None and runner.last_event["reason"] == "no-last-route"
