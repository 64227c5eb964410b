"""Automation next to the deeper agent features: a heartbeat on a long session compacts
(before the request, or after the provider's overflow error) and never crashes; usage
of heartbeat and cron turns is counted, every run of a cron job's session included;
``/new`` and ``/status`` of the main session next to heartbeats and cron sessions; the
``cron`` tool offered next to ``skill`` and ``memory_*``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.agents.test_compaction import WORDS, summariser
from tests.automation.cron_helpers import ms, subsystem_stack
from tests.commands.test_registry import context
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Reply

from moltbot.agents.runtime import embedded
from moltbot.automation.clock import ManualClock
from moltbot.automation.heartbeat import HeartbeatRunner, Outcome
from moltbot.automation.isolated import Turn, run_turn
from moltbot.commands import REGISTRY, handle

MAIN = "agent:main:main"


@pytest.fixture
async def llm() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key="sk-test") as server:
        server.responder = summariser
        yield server


def config(llm: FakeOpenAI, window: int = 100_000, **compaction: Any) -> dict[str, Any]:
    data = openai_config(llm.base_url)
    data["models"]["providers"]["fake"]["models"] = [{"id": "m1", "contextWindow": window}]
    data["agents"]["defaults"].update(
        skipBootstrap=True,
        heartbeat={"every": "1h"},
        compaction={"reserveTokens": 400, "keepRecentTokens": 600, **compaction},
    )
    if compaction:  # a small window: only a couple of tool schemas in each request
        data["tools"] = {"allow": ["read", "write"]}
    return data


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Any]:
    """``await stack(config)``: the agent runtime and a heartbeat runner on a manual
    clock, over one instance under ``tmp_path`` (a second call stops the first stack,
    so the next one reads the same sessions)."""
    made: list[Any] = []

    async def build(data: dict[str, Any]) -> tuple[Any, HeartbeatRunner]:
        while made:
            await made.pop().stop()
        workspace = tmp_path / "ws"
        workspace.mkdir(exist_ok=True)
        (workspace / "HEARTBEAT.md").write_text("- check the build\n")
        data["agents"]["defaults"]["workspace"] = str(workspace)
        make_context, _ = subsystem_stack(tmp_path, data)
        base = make_context(None)
        agents = embedded(base.instance, base.config, base.env)
        await agents.start()
        made.append(agents)
        runner = HeartbeatRunner(
            make_context({"agents": agents}.get), ManualClock(ms("2026-01-10 12:00"))
        )
        await runner.start()
        made.append(runner)
        return agents, runner

    yield build
    while made:
        await made.pop().stop()


async def entries(agents: Any, key: str = MAIN) -> list[dict[str, Any]]:
    store = agents.store("main")
    return (await store.read(await store.get(key))).entries


async def fill(agents: Any, turns: int) -> None:
    for turn in range(turns):
        await agents.respond("main", MAIN, f"turn {turn}: " + WORDS * 8)


async def test_a_heartbeat_on_a_long_session_compacts_first(stack: Any, llm: FakeOpenAI) -> None:
    agents, _ = await stack(config(llm, mode="manual"))  # grows past 3000 tokens
    await fill(agents, 16)
    agents, runner = await stack(config(llm, window=3000, mode="auto"))
    llm.push(Reply("HEARTBEAT_OK"))

    assert await runner.run_once("main", "interval") == Outcome("ran")

    [compaction] = [e for e in await entries(agents) if e["type"] == "compaction"]
    assert compaction["reason"] == "auto"
    heartbeat = llm.requests[-1]["body"]["messages"]
    assert "check the build" in str(heartbeat) and "SUMMARY:" in str(heartbeat)
    assert "turn 0:" not in str(heartbeat)
    assert llm.refused == []


async def test_a_heartbeat_refused_as_too_long_compacts_and_retries(
    stack: Any, llm: FakeOpenAI
) -> None:
    agents, runner = await stack(config(llm, mode="manual"))
    await fill(agents, 10)
    llm.context_window = 2500
    llm.push(Reply("HEARTBEAT_OK"))

    assert await runner.run_once("main", "interval") == Outcome("ran")

    assert len(llm.refused) == 1
    [compaction] = [e for e in await entries(agents) if e["type"] == "compaction"]
    assert compaction["reason"] == "overflow"
    assert runner.last_event is not None and runner.last_event["status"] == "ok-token"


async def test_usage_counts_heartbeat_turns_and_every_cron_run(stack: Any, llm: FakeOpenAI) -> None:
    agents, runner = await stack(config(llm))
    llm.push(Reply("HEARTBEAT_OK", usage=(100, 5)))
    assert await runner.run_once("main", "interval") == Outcome("ran")
    for run in range(3):
        llm.push(Reply(f"report {run}", usage=(1000, 50)))
        result = await run_turn(agents, None, Turn("main", "cron:nightly", "report"))
        assert result.status == "ok"
        await agents.usage_summary()  # a look between runs must not lose the earlier ones

    summary = await agents.usage_summary()
    sessions = {row["key"]: row for row in summary["bySession"]}
    assert sessions[MAIN]["calls"] == 1 and sessions[MAIN]["input"] == 100
    cron = sessions["agent:main:cron:nightly"]
    assert (cron["calls"], cron["input"], cron["output"]) == (3, 3000, 150)
    assert summary["totals"]["input"] == 3100
    # the cron session still holds only its latest run
    texts = [e["message"]["content"] for e in await entries(agents, "agent:main:cron:nightly")]
    assert any("report 2" in str(t) for t in texts)
    assert not any("report 0" in str(t) for t in texts)


def command(agents: Any, text: str, key: str = MAIN) -> Any:
    """Run the chat command ``text`` as an owner in session ``key``."""
    invocation, ctx = context(REGISTRY, text)
    return handle(invocation, replace(ctx, session_key=key, agents=agents))


async def test_new_and_status_next_to_heartbeats_and_cron_sessions(
    stack: Any, llm: FakeOpenAI
) -> None:
    agents, runner = await stack(config(llm))
    llm.push(Reply("nightly report", usage=(500, 20)))
    assert (await run_turn(agents, None, Turn("main", "cron:nightly", "report"))).status == "ok"
    cron_before = (await agents.store("main").get("agent:main:cron:nightly")).session_id

    # a heartbeat that hangs is stopped by /new; the runner answers, it does not crash
    llm.push(Reply(hang=True))
    asked = len(llm.requests)
    beat = asyncio.create_task(runner.run_once("main", "interval"))
    while len(llm.requests) == asked:  # the heartbeat's turn is waiting for the model
        await asyncio.sleep(0.01)
    status = await command(agents, "/status")
    assert "Queue: running" in status.text and f"Session: {MAIN}" in status.text
    old_id = (await agents.store("main").get(MAIN)).session_id
    reset = await command(agents, "/new")
    assert reset.data["reset"] is True
    assert (await beat).status == "failed"

    # the next heartbeat runs in the fresh main session; the cron session is untouched
    llm.push(Reply("HEARTBEAT_OK", usage=(40, 2)))
    assert await runner.run_once("main", "interval") == Outcome("ran")
    main = await agents.store("main").get(MAIN)
    assert main.session_id != old_id and main.session_id == reset.data["sessionId"]
    cron = await agents.store("main").get("agent:main:cron:nightly")
    assert cron.session_id == cron_before
    status = await command(agents, "/status")
    assert "Usage: 40 in / 2 out" in status.text and "Queue: idle" in status.text
    cron_status = await command(agents, "/status", "agent:main:cron:nightly")
    assert "Usage: 500 in / 20 out" in cron_status.text


async def test_the_cron_tool_is_offered_next_to_skill_and_memory(
    stack: Any, llm: FakeOpenAI
) -> None:
    agents, _ = await stack(config(llm))
    llm.push(Reply("hi"))
    await agents.respond("main", MAIN, "hello")
    names = {t["function"]["name"] for t in llm.requests[-1]["body"]["tools"]}
    assert {"cron", "skill", "memory_search", "memory_get"} <= names


async def test_a_fifo_where_the_usage_archive_goes_never_blocks_a_cron_run(
    stack: Any, llm: FakeOpenAI
) -> None:
    import os

    agents, _ = await stack(config(llm))
    sessions = agents.instance.sessions_dir("main")
    sessions.mkdir(parents=True, exist_ok=True)
    os.mkfifo(sessions / "usage-archive.jsonl")
    for run in range(2):
        llm.push(Reply(f"report {run}"))
        result = await run_turn(agents, None, Turn("main", "cron:nightly", "report"))
        assert result.status == "ok"
    summary = await agents.usage_summary()  # the FIFO is skipped, not read
    sessions_seen = {row["key"]: row for row in summary["bySession"]}
    assert sessions_seen["agent:main:cron:nightly"]["calls"] == 1  # the latest run only
