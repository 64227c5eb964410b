"""Usage: per model call in the transcript (with its cost), added up by usage.cost /
usage.status over the protocol and by `moltbot usage`; `moltbot sessions compact`."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.agents.gateway_agents import is_chat, start
from tests.fakes.llm_openai import FakeOpenAI, openai_config

from gateway_harness import ws_client
from moltbot.agents.usage import UsageLedger, summary


def priced(llm: FakeOpenAI) -> dict[str, Any]:
    config = openai_config(llm.base_url, "m1", "m2")
    config["models"]["providers"]["fake"]["models"][0]["cost"] = {"input": 3, "output": 15}
    return config


async def say(client: Any, text: str, session: str = "main") -> None:
    idem = str(uuid.uuid4())
    await client.call("chat.send", {"sessionKey": session, "message": text, "idempotencyKey": idem})
    await client.wait_event(is_chat(idem, "final"), timeout=10)


async def test_usage_methods_cli_and_compact(home: Path, llm: FakeOpenAI, run_moltbot: Any) -> None:
    gw = start(home, priced(llm))
    try:
        async with ws_client(gw.url, gw.token) as client:
            await say(client, "one")
            await say(client, "two", "agent:main:side")
            await client.call("sessions.patch", {"key": "agent:main:side", "model": "fake/m2"})
            await say(client, "three", "agent:main:side")
            cost = await client.call("usage.cost", {"days": 7})
            assert cost["days"] == 7
            totals = cost["totals"]
            assert (totals["input"], totals["output"], totals["calls"]) == (36, 21, 3)
            # m1 costs 3$/15$ per million tokens; m2 has no price
            assert totals["totalCost"] == pytest.approx(2 * (12 * 3 + 7 * 15) / 1e6)
            assert totals["missingCostEntries"] == 1
            by_model = {m["model"]: m for m in cost["byModel"]}
            assert by_model["fake/m1"]["calls"] == 2 and by_model["fake/m2"]["calls"] == 1
            by_session = {s["key"]: s["calls"] for s in cost["bySession"]}
            assert by_session == {"agent:main:main": 1, "agent:main:side": 2}
            assert [a["agentId"] for a in cost["byAgent"]] == ["main"]
            assert len(cost["daily"]) == 1 and cost["daily"][0]["totalTokens"] == 57
            status = await client.call("usage.status", {})
            [provider] = status["providers"]
            assert provider["provider"] == "fake" and provider["windows"] == []
            assert provider["today"]["calls"] == 3 and status["today"]["calls"] == 3
            # each model call's usage and cost is in the transcript
            history = await client.call("chat.history", {"sessionKey": "main"})
            usage = history["messages"][-1]["usage"]
            assert usage["input"] == 12 and usage["cost"]["total"] == pytest.approx(141e-6)

        cli = run_moltbot("--profile", "main", "usage", "--json")
        assert cli.returncode == 0, cli.stderr
        assert json.loads(cli.stdout)["totals"] == totals
        text = run_moltbot("--profile", "main", "usage", "--by", "model").stdout
        assert "fake/m1" in text and "(+1 unpriced)" in text

        nothing = run_moltbot("--profile", "main", "sessions", "compact", "main")
        assert nothing.returncode == 0, nothing.stderr
        assert "nothing to compact in agent:main:main" in nothing.stdout
        done = await asyncio.to_thread(  # the stand-in model answers from this loop
            run_moltbot,
            "--profile",
            "main",
            "sessions",
            "compact",
            "side",
            "--keep-recent-tokens",
            "0",
            "--json",
        )
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["compacted"] and result["key"] == "agent:main:side"
        missing = run_moltbot("--profile", "main", "sessions", "compact", "agent:main:ghost")
        assert "no such session" in missing.stdout
    finally:
        gw.stop()
    down = run_moltbot("--profile", "main", "sessions", "compact", "main")
    assert down.returncode == 6


def test_the_ledger_reads_only_new_bytes(tmp_path: Path) -> None:
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    path = sessions / "s1.jsonl"
    line = {
        "type": "message",
        "timestamp": "2026-03-01T10:00:00.000Z",
        "message": {
            "role": "assistant",
            "provider": "p",
            "model": "m",
            "usage": {"input": 10, "output": 5, "totalTokens": 15},
        },
    }
    path.write_text(
        json.dumps({"type": "session", "sessionKey": "agent:a:main"})
        + "\n"
        + json.dumps(line)
        + "\n"
    )
    ledger = UsageLedger()
    rows = ledger.scan({"a": sessions})
    assert [(r.session, r.model, r.totals["input"]) for r in rows] == [("agent:a:main", "p/m", 10)]
    with path.open("a") as handle:
        handle.write(json.dumps(line) + "\n" + '{"type": "mess')  # a line being written
    rows = ledger.scan({"a": sessions})
    assert rows[0].totals["calls"] == 2
    with path.open("a") as handle:
        handle.write(
            'age", "timestamp": "2026-03-01T11:00:00Z", "message": {"role": "assistant", '
            '"provider": "p", "model": "m", '
            '"usage": {"input": 1, "output": 1}}}\n'
        )
    rows = ledger.scan({"a": sessions})
    assert rows[0].totals["calls"] == 3 and rows[0].totals["input"] == 21
    from datetime import date

    old = summary(rows, 1, today=date(2026, 3, 5))
    assert old["totals"]["calls"] == 0  # outside the window
