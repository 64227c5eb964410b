"""Memory: the FTS5 index of MEMORY.md and memory/*.md, kept fresh by watching the
files; memory_search finds a note the agent wrote earlier; optional embeddings."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from tests.fakes.llm_openai import FakeOpenAI, openai_config
from tests.fakes.llm_script import Reply

from moltbot.agents.memory import MemoryIndex, chunk, fts_query, is_memory_path

KEY = "agent:main:main"


def test_chunks_keep_line_ranges_and_overlap() -> None:
    text = "\n".join(f"line {i} " + "x" * 90 for i in range(1, 61))
    chunks = chunk("memory/a.md", text)
    assert len(chunks) >= 4 and chunks[0].start_line == 1
    assert chunks[-1].end_line == 60
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.start_line <= before.end_line  # overlap
        assert len(before.text) <= 1700


def test_queries_cannot_inject_fts_syntax() -> None:
    assert (
        fts_query('wifi "password" AND NOT (x*)') == '"wifi" OR "password" OR "and" OR "not" OR "x"'
    )
    assert fts_query("  ,;  ") is None
    assert is_memory_path("MEMORY.md") and is_memory_path("memory/2026/a.md")
    for bad in ("../MEMORY.md", "/etc/x.md", "memory/../../x.md", "notes.md", "memory/x.txt"):
        assert not is_memory_path(bad), bad


async def test_index_follows_edits_deletes_and_ignores_links(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "memory").mkdir(parents=True)
    (workspace / "MEMORY.md").write_text("# Long term\n\nThe boat is named Pinch.\n")
    (workspace / "memory" / "2026-01-02.md").write_text("Met Ann at the harbour.\n")
    outside = tmp_path / "secret.md"
    outside.write_text("the launch code is 0000\n")
    (workspace / "memory" / "link.md").symlink_to(outside)
    index = MemoryIndex(workspace, tmp_path / "mem.sqlite")
    try:
        hits = await index.search("boat name")
        assert hits[0].path == "MEMORY.md" and "Pinch" in hits[0].snippet
        assert hits[0].start_line == 1
        assert (await index.search("harbour"))[0].path == "memory/2026-01-02.md"
        assert await index.search("launch code") == []  # a link out of the workspace
        (workspace / "MEMORY.md").write_text("The boat was renamed Claw.\n")
        assert [h.snippet for h in await index.search("boat")] == ["The boat was renamed Claw."]
        (workspace / "memory" / "2026-01-02.md").unlink()
        assert await index.search("harbour") == []
        assert not await index.sync()  # nothing changed since
    finally:
        await index.stop()


async def test_the_watcher_indexes_a_new_note_by_itself(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    index = MemoryIndex(workspace, tmp_path / "mem.sqlite")
    index.watch()
    try:
        await asyncio.wait_for(index.watching.wait(), 15)
        deadline = asyncio.get_running_loop().time() + 15
        (workspace / "memory").mkdir()
        (workspace / "memory" / "today.md").write_text("Feed the lobster at noon.\n")
        while index.count() == 0:  # no search: only the watcher can index it
            assert asyncio.get_running_loop().time() < deadline, "the watcher never indexed it"
            await asyncio.sleep(0.05)
        assert index.count() == 1
    finally:
        await index.stop()


@pytest.fixture
async def llm() -> Any:
    async with FakeOpenAI() as server:
        yield server


async def test_memory_search_finds_a_note_written_earlier(
    llm: FakeOpenAI, make_runtime: Any, tmp_path: Path
) -> None:
    runtime, _ = await make_runtime(openai_config(llm.base_url))
    note = {"path": "memory/2026-02-03.md", "content": "- The wifi password is lobster42\n"}
    llm.push(Reply(tool_calls=[("write", note)]), Reply("Noted."))
    assert await runtime.respond("main", KEY, "remember the wifi password lobster42") == "Noted."
    llm.push(
        Reply(tool_calls=[("memory_search", {"query": "wifi password"})]),
        Reply(tool_calls=[("memory_get", {"path": "memory/2026-02-03.md"})]),
        Reply(tool_calls=[("memory_get", {"path": "AGENTS.md"})]),
        Reply("It is lobster42."),
    )
    assert await runtime.respond("main", KEY, "what was the wifi password?") == "It is lobster42."
    found = json.loads(llm.requests[-3]["body"]["messages"][-1]["content"])
    assert found["results"][0]["path"] == "memory/2026-02-03.md"
    assert "lobster42" in found["results"][0]["snippet"]
    got = json.loads(llm.requests[-2]["body"]["messages"][-1]["content"])
    assert got["text"] == "- The wifi password is lobster42"
    assert "not a memory file" in llm.requests[-1]["body"]["messages"][-1]["content"]
    assert (tmp_path / ".clawdbot" / "memory" / "main.sqlite").exists()


async def test_embeddings_rank_by_meaning(
    llm: FakeOpenAI, make_runtime: Any, tmp_path: Path
) -> None:
    config = openai_config(llm.base_url)
    config["agents"]["defaults"]["memorySearch"] = {
        "embeddings": {"provider": "fake", "model": "e1"}
    }
    runtime, _ = await make_runtime(config)
    workspace = runtime.workspace("main")
    (workspace / "memory").mkdir(exist_ok=True)
    (workspace / "memory" / "garage.md").write_text("My car is the red one.\n")
    (workspace / "memory" / "pets.md").write_text("The kitty sleeps all day.\n")
    index = runtime.memory_index("main")
    hits = await index.search("automobile")  # no shared word: only the embeddings match
    assert hits and hits[0].path == "memory/garage.md"
    assert llm.embedding_requests and llm.embedding_requests[0]["model"] == "e1"
    hits = await index.search("feline")
    assert hits[0].path == "memory/pets.md"
