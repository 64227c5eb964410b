"""Compaction: a session driven past a small context window keeps answering; a
provider's overflow error compacts and retries; tool results are pruned first; the
memory flush; manual compaction; the kept part is all a turn reads."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Fail, Reply

from moltbot.sessions.transcript import Transcript

KEY = "agent:main:main"
WORDS = "lobster claw shell ocean tide reef current kelp sand crab "


@pytest.fixture
async def llm() -> Any:
    async with FakeOpenAI() as server:
        server.responder = summariser
        server.context_window = 1_000_000  # report each prompt's real size as its usage
        yield server


def summariser(body: dict[str, Any]) -> Reply | None:
    """The stand-in model's answer to a summary request (anything else: the queue/echo)."""
    messages = body.get("messages") or []
    if messages and str(messages[0].get("content", "")).startswith("You summarise"):
        text = messages[-1]["content"]
        return Reply(f"SUMMARY: the user sent {text.count('User: ')} messages about the sea.")
    return None


def config(llm: FakeOpenAI, window: int = 3000, **compaction: Any) -> dict[str, Any]:
    data = openai_config(llm.base_url)
    data["models"]["providers"]["fake"]["models"] = [{"id": "m1", "contextWindow": window}]
    data["agents"]["defaults"].update(
        skipBootstrap=True,
        compaction={"reserveTokens": 400, "keepRecentTokens": 600, **compaction},
    )
    data["tools"] = {"allow": ["read", "write"]}
    return data


def system_of(request: dict[str, Any]) -> str:
    return str(request["body"]["messages"][0]["content"])


async def read_entries(runtime: Any) -> list[dict[str, Any]]:
    store = runtime.store("main")
    entry = await store.get(KEY)
    return (await store.read(entry)).entries


async def test_a_long_session_keeps_answering_past_a_small_window(
    llm: FakeOpenAI, make_runtime: Any
) -> None:
    llm.context_window = 3000  # the stand-in refuses bigger prompts and reports real usage
    runtime, events = await make_runtime(config(llm))
    replies = []
    for turn in range(24):
        replies.append(await runtime.respond("main", KEY, f"turn {turn}: " + WORDS * 8))
    assert replies == [f"echo: turn {t}: " + WORDS * 8 for t in range(24)]
    assert llm.refused == []  # compaction kept every request inside the window

    entries = await read_entries(runtime)
    compactions = [e for e in entries if e["type"] == "compaction"]
    assert compactions and all(c["reason"] == "auto" for c in compactions)
    assert compactions[-1]["summary"].startswith("SUMMARY: the user sent")
    assert compactions[-1]["tokensAfter"] < compactions[-1]["tokensBefore"]
    # the originals are all still in the transcript
    users = [
        e["message"]["content"]
        for e in entries
        if e["type"] == "message" and e["message"]["role"] == "user"
    ]
    assert len(users) == 24 and users[0].startswith("turn 0:")
    # after a compaction the prompt carries the summary, not the summarised turns
    last = [r for r in llm.requests if not system_of(r).startswith("You summarise")][-1]
    assert "## Conversation summary" in system_of(last) and "SUMMARY:" in system_of(last)
    assert "turn 0:" not in json.dumps(last["body"]["messages"])
    assert "turn 23:" in json.dumps(last["body"]["messages"])
    index = await runtime.store("main").get(KEY)
    assert index.compaction_count == len(compactions)
    assert index.first_kept_entry_id == compactions[-1]["firstKeptEntryId"]
    assert 0 < index.context_tokens <= 3000
    assert any(p["stream"] == "compaction" for p in events.agent())
    info = await runtime.session_info(KEY)
    assert info.compactions == len(compactions) and info.context_window == 3000


async def test_provider_overflow_compacts_and_retries(llm: FakeOpenAI, make_runtime: Any) -> None:
    # manual mode: no compaction until the provider refuses the request as too long
    runtime, _ = await make_runtime(config(llm, window=100_000, mode="manual"))
    for turn in range(10):
        await runtime.respond("main", KEY, f"turn {turn}: " + WORDS * 8)
    llm.context_window = 2500
    reply = await runtime.respond("main", KEY, "still there?")
    assert reply == "echo: still there?"
    assert len(llm.refused) == 1  # refused once, then compacted and retried
    entries = await read_entries(runtime)
    [compaction] = [e for e in entries if e["type"] == "compaction"]
    assert compaction["reason"] == "overflow"
    # the user's message was kept and answered, never lost
    users = [e["message"]["content"] for e in entries if e.get("message", {}).get("role") == "user"]
    assert users[-1] == "still there?"


async def test_tool_results_are_pruned_before_compacting(
    llm: FakeOpenAI, make_runtime: Any, tmp_path: Path
) -> None:
    runtime, _ = await make_runtime(config(llm, window=4000, keepRecentTokens=300))
    (tmp_path / "workspace").mkdir(exist_ok=True)
    (tmp_path / "workspace" / "big.txt").write_text("x" * 12000)
    llm.push(Reply(tool_calls=[("read", {"path": "big.txt"})]), Reply("read it"))
    assert await runtime.respond("main", KEY, "read big.txt") == "read it"
    for turn in range(3):
        await runtime.respond("main", KEY, f"short {turn}")
    last = llm.requests[-1]["body"]["messages"]
    tool = [m for m in last if m["role"] == "tool"][0]
    assert "[old tool result pruned to save context: 12" in tool["content"]
    entries = await read_entries(runtime)
    assert not [e for e in entries if e["type"] == "compaction"]  # pruning was enough
    stored = [e for e in entries if e.get("message", {}).get("role") == "toolResult"][0]
    assert len(stored["message"]["content"][0]["text"]) >= 12000  # the file keeps it whole


async def test_memory_flush_runs_before_an_automatic_compaction(
    llm: FakeOpenAI, make_runtime: Any, tmp_path: Path
) -> None:
    flushed: list[str] = []

    def model(body: dict[str, Any]) -> Reply | None:
        summary = summariser(body)
        if summary is not None:
            return summary
        last = body["messages"][-1]
        if last["role"] == "user" and "memory flush" in str(last["content"]):
            flushed.append(last["content"])
            path = f"memory/{date.today().isoformat()}.md"
            return Reply(tool_calls=[("write", {"path": path, "content": "- likes the sea\n"})])
        if (
            last["role"] == "tool"
            and len(flushed)
            and not any(
                m.get("role") == "assistant" and m.get("content") == "NO_REPLY"
                for m in body["messages"]
            )
            and "memory/" in json.dumps(body["messages"][-2])
        ):
            return Reply("NO_REPLY")
        return None

    llm.responder = model
    flush = {"memoryFlush": {"enabled": True}}
    runtime, events = await make_runtime(config(llm, **flush))
    for turn in range(24):
        reply = await runtime.respond("main", KEY, f"turn {turn}: " + WORDS * 8)
        assert reply == f"echo: turn {turn}: " + WORDS * 8
    assert flushed, "no flush turn ran"
    note = tmp_path / "workspace" / "memory" / f"{date.today().isoformat()}.md"
    assert note.read_text() == "- likes the sea\n"
    entries = await read_entries(runtime)
    records = [e for e in entries if e.get("customType") == "memory-flush"]
    compactions = [e for e in entries if e["type"] == "compaction"]
    assert records and compactions and len(records) <= len(compactions)
    assert records[0]["data"]["tools"] == ["write"]
    # the flush was silent: no chat event carried NO_REPLY, no run of its own
    assert not [p for p in events.chat() if "NO_REPLY" in json.dumps(p)]


async def test_manual_compaction_and_a_short_session(llm: FakeOpenAI, make_runtime: Any) -> None:
    runtime, _ = await make_runtime(config(llm, window=100_000))
    await runtime.respond("main", KEY, "hello")
    outcome = await runtime.compact(KEY)
    assert not outcome.compacted and outcome.reason == "nothing older to summarise"
    for turn in range(6):
        await runtime.respond("main", KEY, f"turn {turn}: " + WORDS * 8)
    outcome = await runtime.compact(KEY, instructions="keep the numbers", keep_recent=100)
    assert outcome.compacted and outcome.tokens_after < outcome.tokens_before
    summary_request = [r for r in llm.requests if system_of(r).startswith("You summarise")][-1]
    assert "Focus: keep the numbers" in summary_request["body"]["messages"][-1]["content"]
    entries = await read_entries(runtime)
    [compaction] = [e for e in entries if e["type"] == "compaction"]
    assert compaction["reason"] == "manual"
    assert await runtime.respond("main", KEY, "and now?") == "echo: and now?"
    assert "SUMMARY:" in system_of(llm.requests[-1])


async def test_a_compacted_turn_reads_only_the_kept_part(
    llm: FakeOpenAI, make_runtime: Any, monkeypatch: Any
) -> None:
    runtime, _ = await make_runtime(config(llm, window=100_000))
    for turn in range(6):
        await runtime.respond("main", KEY, f"turn {turn}: " + WORDS * 8)
    assert (await runtime.compact(KEY, keep_recent=100)).compacted
    index = await runtime.store("main").get(KEY)
    assert index.first_kept_offset and index.first_kept_offset > 0
    runtime._stores.clear()  # a fresh store: nothing cached

    def whole_read(self: Transcript) -> Any:
        raise AssertionError("the whole transcript was read")

    monkeypatch.setattr(Transcript, "read", whole_read)
    assert await runtime.respond("main", KEY, "next") == "echo: next"
    sent = json.dumps(llm.requests[-1]["body"]["messages"])
    assert "turn 5:" in sent and "turn 0:" not in sent


def echo_summariser(body: dict[str, Any]) -> Reply | None:
    """A model that "summarises" by repeating its whole prompt (the summary so far and
    every message it was asked to summarise): a summary as long as what it replaces."""
    messages = body.get("messages") or []
    if messages and str(messages[0].get("content", "")).startswith("You summarise"):
        return Reply(messages[-1]["content"], chunk_chars=4000)
    return None


def summary_requests(llm: FakeOpenAI) -> list[dict[str, Any]]:
    return [r for r in llm.requests if system_of(r).startswith("You summarise")]


async def converse(runtime: Any, llm: FakeOpenAI, turns: int) -> list[int]:
    """``turns`` turns, each answered and each request holding its own message; the
    turns that asked for a summary."""
    summarised_at = []
    for turn in range(turns):
        before = len(summary_requests(llm))
        reply = await runtime.respond("main", KEY, f"turn {turn}: " + WORDS * 8)
        assert reply == f"echo: turn {turn}: " + WORDS * 8  # every turn answers
        last = [r for r in llm.requests if not system_of(r).startswith("You summarise")][-1]
        assert f"turn {turn}:" in json.dumps(last["body"]["messages"])
        if len(summary_requests(llm)) > before:
            summarised_at.append(turn)
    return summarised_at


def spaced(turns: list[int], gap: int = 3) -> bool:
    return all(b - a >= gap for a, b in zip(turns, turns[1:], strict=False))


async def test_a_summary_as_long_as_the_conversation_does_not_compact_every_turn(
    llm: FakeOpenAI, make_runtime: Any
) -> None:
    llm.responder = echo_summariser
    runtime, _ = await make_runtime(config(llm))
    compacted_at = await converse(runtime, llm, 30)
    entries = await read_entries(runtime)
    compactions = [e for e in entries if e["type"] == "compaction"]
    assert compactions, "the session never compacted"
    # each compaction shrinks the context, so the next one is several turns away
    assert all(c["tokensAfter"] < c["tokensBefore"] for c in compactions)
    assert spaced(compacted_at)
    assert len(compactions) <= 30 // 3
    # the summary is bounded (an eighth of the window at most), however long the echo
    assert all(len(c["summary"]) <= 3000 // 8 * 4 + 200 for c in compactions)
    users = [e for e in entries if e.get("message", {}).get("role") == "user"]
    assert len(users) == 30  # nothing lost


async def test_a_compaction_that_fails_is_not_retried_every_turn(
    llm: FakeOpenAI, make_runtime: Any, caplog: Any
) -> None:
    def broken_summariser(body: dict[str, Any]) -> Fail | None:
        messages = body.get("messages") or []
        if messages and str(messages[0].get("content", "")).startswith("You summarise"):
            return Fail(400, "summaries are not for this model")
        return None

    llm.responder = broken_summariser
    runtime, _ = await make_runtime(config(llm))
    attempted_at = await converse(runtime, llm, 30)  # the oldest messages left out instead
    assert attempted_at, "compaction was never attempted"
    # after a failed attempt the next waits for keepRecentTokens (600) of new context
    assert spaced(attempted_at)
    assert "still" in caplog.text and "oldest messages are left out" in caplog.text
    entries = await read_entries(runtime)
    assert not [e for e in entries if e["type"] == "compaction"]
    assert len([e for e in entries if e.get("message", {}).get("role") == "user"]) == 30


async def test_a_compaction_that_leaves_too_much_waits_for_the_context_to_grow(
    llm: FakeOpenAI, make_runtime: Any, tmp_path: Path, caplog: Any
) -> None:
    # the system prompt alone takes most of the window: no summary can make room
    (tmp_path / "workspace").mkdir(exist_ok=True)
    (tmp_path / "workspace" / "AGENTS.md").write_text("lobster notes " * 600)
    runtime, _ = await make_runtime(config(llm))
    attempted_at = await converse(runtime, llm, 24)
    assert attempted_at, "compaction was never attempted"
    assert spaced(attempted_at)
    assert "still" in caplog.text and "over the limit" in caplog.text
    entries = await read_entries(runtime)
    assert len([e for e in entries if e.get("message", {}).get("role") == "user"]) == 24
